// Svg.ML.PaperClaims — the SVG paper's claims at small scale on Fashion-MNIST: the same small DiT trained on
//   (i)  SVG latents: frozen ImageNet ResNet18 (ML.NET's DnnImageFeaturizer network) + residual ViT, and
//   (ii) latents of a plain autoencoder of the same shape, trained from scratch with the same budget;
// FD against training steps, FD at 5/10/25 sampling steps, linear probes, reconstruction. Writes docs/results.md and
// docs/results/*.png.
//
//   dotnet run -c Release --project benchmarks/Svg.ML.PaperClaims [-- --help]
using System.Diagnostics;
using Svg.ML.Data;
using Svg.ML.Encoders;
using Svg.ML.PaperClaims;
using Svg.Quickstart;
using static TorchSharp.torch;

ClaimsOptions o;
try { o = ClaimsOptions.Parse(args); }
catch (Exception e) when (e is ArgumentException or FormatException)
{
    Console.Error.WriteLine(e.Message);
    return 1;
}
if (o.Help)
{
    Console.WriteLine(ClaimsOptions.Usage);
    return 0;
}
string measurementsPath = Path.Combine(o.DocsDirectory, "results", "measurements.json");
if (o.ReportOnly)
{
    new ResultsReport(ResultsData.Load(measurementsPath), o.DocsDirectory).Write();
    Console.WriteLine($"Rewrote {Path.Combine(o.DocsDirectory, "results.md")} from {measurementsPath}.");
    return 0;
}
if (!QuickstartData.IsIdxFolder(FashionMnist.DebianDirectory))
{
    Console.Error.WriteLine($"Fashion-MNIST is not installed ({FashionMnist.DebianDirectory}). Install it with");
    Console.Error.WriteLine($"    {QuickstartData.InstallCommand}");
    return 2;
}

var clock = Stopwatch.StartNew();
var context = RunContext.Capture(args, o);
QuickstartPipeline.InitializeRuntime();
if (o.Threads is int threads) set_num_threads(threads);
if (Directory.Exists(o.WorkDirectory)) Directory.Delete(o.WorkDirectory, recursive: true);
Directory.CreateDirectory(o.WorkDirectory);
Directory.CreateDirectory(Path.Combine(o.DocsDirectory, "results"));
var w = Console.Out;
w.WriteLine($"Svg.ML paper claims — {get_num_threads()} threads, seed {o.Seed}, work folder {o.WorkDirectory}.");

using var data = QuickstartData.Load(FashionMnist.DebianDirectory, o.TrainImages, o.TestImages, 32, o.Seed);
w.WriteLine($"[data] {data.Description}.");

var sw = Stopwatch.StartNew();
using var resnet = ResNet18.FromModelDirectory();
FashionClassifier cnn;
double cnnAccuracy;
using (var classifierData = QuickstartData.Load(FashionMnist.DebianDirectory, o.ClassifierImages, o.TestImages, 32, o.Seed))
    (cnn, cnnAccuracy) = FashionClassifier.Train(classifierData.Train, classifierData.Test, o.ClassifierEpochs, o.Seed);
var classifierTime = sw.Elapsed;
w.WriteLine($"[fd] feature networks: {FrechetEvaluation.EncoderName(resnet)}; {cnn.FeatureName(cnnAccuracy)} (trained in {classifierTime.TotalSeconds:F0} s).");
var experiment = new Experiment(o, data, resnet, cnn, w);
var reference = experiment.RealReference();
w.WriteLine($"[fd] real reference ({o.FdSamples} training images vs {data.Test.Count} held-out): ResNet18 {reference.ResNet:F2}, CNN {reference.Cnn:F2}.");

w.WriteLine("[stage 1] (i) SVG autoencoder");
using var svg = experiment.TrainSvg(new FeatureCache(Path.Combine(o.WorkDirectory, "cache")));
w.WriteLine("[stage 1] (ii) plain autoencoder");
using var plain = experiment.TrainPlain();
foreach (var arm in new[] { svg, plain })
{
    experiment.EvaluateReconstruction(arm);
    w.WriteLine($"[stage 1] {arm.Name}: {arm.Reconstruction}; rFD ResNet18 {arm.ReconstructionFd!.ResNet:F2}, CNN {arm.ReconstructionFd.Cnn:F2}; " +
                $"stage 1 {arm.Stage1Time.TotalSeconds:F0} s, featurize {arm.FeaturizeTime.TotalSeconds:F0} s.");
}

var probes = experiment.Probes(svg, plain);
svg.Probe = probes.Svg;
plain.Probe = probes.Plain;
w.WriteLine($"[probe] base {probes.Base}; SVG {probes.Svg}; plain {probes.Plain}.");

foreach (var arm in new[] { svg, plain })
{
    w.WriteLine($"[stage 2] {arm.Name}");
    experiment.TrainDiffusion(arm, Path.Combine(o.WorkDirectory, "checkpoints-" + arm.Key));
}

context.Finish(clock.Elapsed);
var results = new ResultsData(o, new RunInfo(context.Command, context.StartUtc, context.Machine, get_num_threads(), context.LoadAtStart, context.LoadAtEnd,
                                             context.Elapsed.TotalMinutes, context.ProcessCpu.TotalMinutes),
                              data.Description, data.ClassNames, data.Test.Count, experiment.ResNetName, cnn.FeatureName(cnnAccuracy), reference, probes.Base,
                              ArmResults.From(svg), ArmResults.From(plain));
results.Save(measurementsPath);
new ResultsReport(results, o.DocsDirectory).Write();
w.WriteLine($"Wrote {Path.Combine(o.DocsDirectory, "results.md")} and the plots in {Path.Combine(o.DocsDirectory, "results")} ({clock.Elapsed.TotalMinutes:F1} min).");
return 0;
