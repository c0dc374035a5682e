// Svg.ML.DenseTasks — the SVG paper's Table 4 at small scale: segmentation and depth heads (linear probe and light
// decoder) on (i) SVG features, (ii) the frozen base's features alone, (iii) a plain autoencoder's latents, trained and
// scored on seeded synthetic scenes; depth on the Middlebury motorcycle when python3-skimage is installed. Writes the
// "Dense tasks" section of docs/results.md and docs/figures/dense_*.png.
//
//   dotnet run -c Release --project benchmarks/Svg.ML.DenseTasks [-- --help]
using System.Diagnostics;
using Svg.ML.Dense;
using Svg.ML.Dense.Synthetic;
using Svg.ML.DenseTasks;
using Svg.ML.PaperClaims;
using Svg.Quickstart;
using static TorchSharp.torch;

DenseOptions o;
try { o = DenseOptions.Parse(args); }
catch (Exception e) when (e is ArgumentException or FormatException)
{
    Console.Error.WriteLine(e.Message);
    return 1;
}
if (o.Help)
{
    Console.WriteLine(DenseOptions.Usage);
    return 0;
}

var clock = Stopwatch.StartNew();
var started = DateTime.UtcNow;
string loadAtStart = RunContext.LoadAverage();
QuickstartPipeline.InitializeRuntime();
if (o.Threads is int threads) set_num_threads(threads);
var w = Console.Out;
string figures = Path.Combine(o.DocsDirectory, "figures");
Directory.CreateDirectory(figures);
w.WriteLine($"Svg.ML dense tasks — {get_num_threads()} threads, seed {o.Seed}.");

var sw = Stopwatch.StartNew();
var sceneOptions = new SceneOptions { Size = o.SceneSize };
using var trainScenes = SceneGenerator.FromSampleData(train: true, objectImages: 6000, sceneOptions, o.Seed).GenerateSet(0, o.TrainScenes);
using var testScenes = SceneGenerator.FromSampleData(train: false, objectImages: 2000, sceneOptions, o.Seed + 1).GenerateSet(0, o.TestScenes);
double sceneSeconds = sw.Elapsed.TotalSeconds;
w.WriteLine($"[scenes] {o.TrainScenes} training scenes (objects from the Fashion-MNIST training subset) and {o.TestScenes} held-out scenes " +
            $"(test subset, another seed), {o.SceneSize} px, in {sceneSeconds:F1} s.");

using var trainImages = trainScenes.ToLabeledImages();
var (svg, baseArm, plain) = FeatureArms.Build(o, trainImages, testScenes.Images, w);
FeatureArm[] arms = [svg, baseArm, plain];

using var trainClasses = trainScenes.Classes.to(ScalarType.Int64);
using var testClasses = testScenes.Classes.to(ScalarType.Int64);
var results = new List<HeadResult>();
var figureHeads = new Dictionary<DenseTask, DenseHead>();
foreach (var task in new[] { DenseTask.Segmentation, DenseTask.Depth })
    foreach (var kind in new[] { DenseHeadKind.Linear, DenseHeadKind.Decoder })
    {
        w.WriteLine($"[heads] {kind} {task}");
        for (int s = 0; s < o.Seeds; s++)
            foreach (var arm in arms)
            {
                var (trainTarget, testTarget) = task == DenseTask.Segmentation ? (trainClasses, testClasses) : (trainScenes.Depth, testScenes.Depth);
                int steps = kind == DenseHeadKind.Linear ? o.HeadSteps : o.DecoderSteps;
                results.Add(HeadRuns.Run(arm, task, kind, trainTarget, testTarget, o, steps, o.Seed + s, w, out var head));
                if (arm == svg && kind == DenseHeadKind.Decoder && s == 0) figureHeads[task] = head;
                else head.Dispose();
            }
    }

// Examples: the first scenes of the held-out set, SVG features + decoder heads.
const int examples = 6;
using (var scope = NewDisposeScope())
using (no_grad())
{
    var images = testScenes.Images.narrow(0, 0, examples).to(ScalarType.Float32) / 255f;
    var features = svg.Test.narrow(0, 0, examples);
    var classes = figureHeads[DenseTask.Segmentation].PredictClasses(features, o.SceneSize, o.SceneSize);
    DenseFigures.SaveTriptych(images, DenseFigures.ColourClasses(testScenes.Classes.narrow(0, 0, examples)), DenseFigures.ColourClasses(classes),
                              Path.Combine(figures, "dense_segmentation.png"));
    var depth = figureHeads[DenseTask.Depth].PredictDepth(features, o.SceneSize, o.SceneSize);
    DenseFigures.SaveTriptych(images, DenseFigures.ColourDepth(testScenes.Depth.narrow(0, 0, examples), 1, 9), DenseFigures.ColourDepth(depth, 1, 9),
                              Path.Combine(figures, "dense_depth.png"));
}
foreach (var head in figureHeads.Values) head.Dispose();

MiddleburyResult? middlebury = null;
if (Middlebury.IsPresent(o.MiddleburyDirectory))
    middlebury = MiddleburyRun.Run(o, arms, figures, w);
else
    w.WriteLine($"[middlebury] skipped: motorcycle_left.png / motorcycle_disp.npz not in {o.MiddleburyDirectory} ({Middlebury.InstallHint}).");

var run = new DenseRunInfo(
    "dotnet run -c Release --project benchmarks/Svg.ML.DenseTasks" + (args.Length > 0 ? " -- " + string.Join(' ', args) : ""),
    started, get_num_threads(), loadAtStart, RunContext.LoadAverage(), clock.Elapsed.TotalMinutes, Process.GetCurrentProcess().TotalProcessorTime.TotalMinutes,
    sceneSeconds);
new DenseReport(o, run, arms, results, middlebury).Write(Path.Combine(o.DocsDirectory, "results.md"));
w.WriteLine($"Wrote the dense-task section of {Path.Combine(o.DocsDirectory, "results.md")} and {figures}/dense_*.png ({clock.Elapsed.TotalMinutes:F1} min).");
return 0;
