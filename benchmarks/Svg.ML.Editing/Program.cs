// Svg.ML.Editing — the SVG paper's editing and interpolation at small scale on Fashion-MNIST, with the two arms of
// benchmarks/Svg.ML.PaperClaims (SVG latents: frozen ResNet18 + residual ViT; a plain autoencoder of the same shape)
// trained the same way at a smaller budget: an editing figure (SDEdit with trajectory inversion, both modes), an
// interpolation figure (lerp and slerp rows) and the FD of λ = 0.5 interpolants, lerp vs slerp, for both arms.
// Writes docs/results/editing.png, interpolation.png, editing.json and the "Editing and interpolation" section of
// docs/results.md.
//
//   dotnet run -c Release --project benchmarks/Svg.ML.Editing [-- options]
//   options: those of Svg.ML.PaperClaims that apply (--train-images, --ae-steps, --steps, --batch, --lr, --ema,
//   --model, --cfg, --classifier-images, --classifier-epochs, --seed, --threads, --docs, --work), and
//   --fd-pairs N (1000)   --sampling-steps N (10)   --edit-time X (0.3)
using System.Diagnostics;
using System.Globalization;
using Svg.ML.Data;
using Svg.ML.Diffusion;
using Svg.ML.Diffusion.Editing;
using Svg.ML.Editing;
using Svg.ML.Encoders;
using Svg.ML.PaperClaims;
using Svg.ML.Training;
using Svg.Quickstart;
using static TorchSharp.torch;

// Smaller defaults than the claims program (≈ 15 min on 2 cores); later arguments override them.
var claimsArgs = new List<string> { "--ae-steps", "400", "--steps", "1000", "--classifier-images", "6000", "--recon-images", "200",
                                    "--work", Path.Combine(Path.GetTempPath(), "svg-editing") };
int fdPairs = 1000, samplingSteps = 10;
double editTime = 0.3;
for (int i = 0; i < args.Length; i++)
{
    string V() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
    switch (args[i])
    {
        case "--fd-pairs": fdPairs = int.Parse(V(), CultureInfo.InvariantCulture); break;
        case "--sampling-steps": samplingSteps = int.Parse(V(), CultureInfo.InvariantCulture); break;
        case "--edit-time": editTime = double.Parse(V(), CultureInfo.InvariantCulture); break;
        default: claimsArgs.Add(args[i]); break;
    }
}
var o = ClaimsOptions.Parse(claimsArgs);
if (o.Help)
{
    Console.WriteLine("See the header of benchmarks/Svg.ML.Editing/Program.cs.");
    return 0;
}
if (!QuickstartData.IsIdxFolder(FashionMnist.DebianDirectory))
{
    Console.Error.WriteLine($"Fashion-MNIST is not installed ({FashionMnist.DebianDirectory}): {QuickstartData.InstallCommand}");
    return 2;
}

var clock = Stopwatch.StartNew();
string loadAtStart = RunContext.LoadAverage();
QuickstartPipeline.InitializeRuntime();
if (o.Threads is int threads) set_num_threads(threads);
if (Directory.Exists(o.WorkDirectory)) Directory.Delete(o.WorkDirectory, recursive: true);
Directory.CreateDirectory(o.WorkDirectory);
string results = Path.Combine(o.DocsDirectory, "results");
Directory.CreateDirectory(results);
var w = Console.Out;
w.WriteLine($"Svg.ML editing — {get_num_threads()} threads, seed {o.Seed}.");

using var data = QuickstartData.Load(FashionMnist.DebianDirectory, o.TrainImages, o.TestImages, 32, o.Seed);
using var resnet = ResNet18.FromModelDirectory();
FashionClassifier cnn;
double cnnAccuracy;
using (var classifierData = QuickstartData.Load(FashionMnist.DebianDirectory, o.ClassifierImages, o.TestImages, 32, o.Seed))
    (cnn, cnnAccuracy) = FashionClassifier.Train(classifierData.Train, classifierData.Test, o.ClassifierEpochs, o.Seed);
w.WriteLine($"[fd] {cnn.FeatureName(cnnAccuracy)}.");
var experiment = new Experiment(o, data, resnet, cnn, w);

var sampler = new SamplerOptions(Steps: samplingSteps, CfgScale: o.Cfg);
var editOptions = new EditOptions(EditTime: editTime, MaskBlur: 0.5);                  // paper: 100 steps, CFG 4, shift 0.4
var region = MaskedEdit.BoxMask(4, 4, 0.25, 0.25, 0.75, 0.75);                          // the central 2×2 cells of the 4×4 grid
int[] inputs = [0, 1, 2];                                                                 // held-out images 0..2
var interpolationFd = new List<InterpolationFd>();
var editSuccess = new List<EditSuccess>();
var editRows = new List<Tensor>();
var interpolationRows = new List<Tensor>();
double[] lambdas = Interpolation.Lambdas(9);

foreach (string key in new[] { "svg", "plain" })
{
    w.WriteLine($"[stage 1] {key}");
    using var arm = key == "svg" ? experiment.TrainSvg(new FeatureCache(Path.Combine(o.WorkDirectory, "cache"))) : experiment.TrainPlain();
    w.WriteLine($"[stage 2] {arm.Name}");
    var config = Architecture.DiT(o.Model, arm.Train!.Channels, arm.Train.GridHeight, arm.Train.NumClasses);
    using var diffusion = DiffusionTraining.Train(arm.Train.Dataset, new DiffusionTrainingOptions
    {
        Model = config, Steps = o.DiffusionSteps, BatchSize = o.DiffusionBatch, LearningRate = o.DiffusionLearningRate,
        EmaDecay = o.EmaDecay, Seed = o.Seed, CheckpointDirectory = Path.Combine(o.WorkDirectory, "checkpoints-" + key),
        CheckpointEvery = 0, KeepLast = 1, Progress = new ConsoleProgressBar(),
    });
    var study = new EditingStudy(arm, diffusion, sampler);

    w.WriteLine($"[interpolation] {arm.Name}: FD of {fdPairs} interpolants at λ = 0.5 ({samplingSteps} Euler steps, CFG {o.Cfg})");
    var fd = study.Smoothness(fdPairs, data.ClassNames.Count, o.Seed, experiment.Fd);
    interpolationFd.Add(fd);
    w.WriteLine($"    endpoints {fd.EndpointA.Cnn:F2} / {fd.EndpointB.Cnn:F2}, lerp {fd.Lerp.Cnn:F2}, slerp {fd.Slerp.Cnn:F2} (CNN); " +
                $"ResNet18 {fd.EndpointA.ResNet:F2} / {fd.EndpointB.ResNet:F2}, {fd.Lerp.ResNet:F2}, {fd.Slerp.ResNet:F2}");
    foreach (var (label, pair) in new[] { (0, 0L), (7, 1L) })
        interpolationRows.Add(study.InterpolationRows(o.Seed + 5_000_000 + pair, o.Seed + 6_000_000 + pair, label, lambdas));

    if (key != "svg") continue;                                                          // editing: the SVG arm
    // Edit success: 30 held-out images, each to three other classes, both modes, three edit times; the CNN's verdict.
    using (var many = data.Test.Images(0, 30, 32, ResizeMode.Stretch))
    {
        int[] src = Enumerable.Range(0, 30).Select(i => (int)data.Test.Labels[i]).ToArray();
        int[][] tgt = src.Select(s => new[] { (s + 1) % 10, (s + 4) % 10, (s + 7) % 10 }).ToArray();
        foreach (double te in new[] { 0.0, 0.3, 0.6 })
            foreach (var mode in new[] { EditMode.EditInside, EditMode.KeepInside })
            {
                using var edited = study.Edit(many, src, tgt, region, editOptions with { Mode = mode, EditTime = te }, o.Seed + 8_000_000);
                using var predicted = cnn.forward(edited).argmax(1);
                var p = predicted.data<long>().ToArray();
                var t = tgt.SelectMany(x => x).ToArray();
                var sAll = src.SelectMany(x => Enumerable.Repeat(x, 3)).ToArray();
                var r = new EditSuccess(mode.ToString(), te, p.Length, p.Zip(t).Count(x => x.First == x.Second) / (double)p.Length,
                                        p.Zip(sAll).Count(x => x.First == x.Second) / (double)p.Length);
                editSuccess.Add(r);
                w.WriteLine($"    {r.Mode}, t_edit {te}: CNN says target class {r.TargetRate:P0}, source class {r.SourceRate:P0} of {r.Edits} edits");
            }
    }
    w.WriteLine($"[editing] {editOptions.Steps} steps, CFG {editOptions.CfgScale}, shift {editOptions.TimeShift}, t_edit {editTime}");
    using var images = data.Test.Images(0, inputs.Length, 32, ResizeMode.Stretch);
    int[] source = inputs.Select(i => (int)data.Test.Labels[i]).ToArray();
    int[][] targets = source.Select(s => new[] { (s + 1) % 10, (s + 4) % 10, (s + 7) % 10 }).ToArray();
    using var reconstructions = study.Reconstruct(images);
    foreach (var mode in new[] { EditMode.EditInside, EditMode.KeepInside })
    {
        using var edited = study.Edit(images, source, targets, region, editOptions with { Mode = mode }, o.Seed + 7_000_000);
        var maskImage = EditingStudy.MaskImage(mode == EditMode.EditInside ? region : 1 - region);
        for (int i = 0; i < inputs.Length; i++)
            editRows.Add(cat(new[] { images.narrow(0, i, 1), reconstructions.narrow(0, i, 1), maskImage, edited.narrow(0, 3 * i, 3) }, 0));
    }
}

using (var grid = cat(editRows, 0)) ImagePng.SaveGrid(grid, 6, Path.Combine(results, "editing.png"), scale: 3);
using (var grid = cat(interpolationRows, 0)) ImagePng.SaveGrid(grid, lambdas.Length, Path.Combine(results, "interpolation.png"), scale: 3);
var report = new EditingReport(interpolationFd, editSuccess, experiment.RealReference(), cnn.FeatureName(cnnAccuracy), experiment.ResNetName, o, fdPairs,
                               samplingSteps, editOptions, $"{clock.Elapsed.TotalMinutes:F1} min, load {loadAtStart} → {RunContext.LoadAverage()}",
                               "dotnet run -c Release --project benchmarks/Svg.ML.Editing" + (args.Length > 0 ? " -- " + string.Join(' ', args) : ""));
report.Write(o.DocsDirectory);
w.WriteLine($"Wrote {Path.Combine(results, "editing.png")}, interpolation.png, editing.json and the section of results.md ({clock.Elapsed.TotalMinutes:F1} min).");
return 0;
