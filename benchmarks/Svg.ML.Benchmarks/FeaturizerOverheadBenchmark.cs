using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using Svg.ML.Autoencoder;
using Svg.ML.Encoders;
using Svg.ML.Encoders.DinoV3;
using Svg.ML.MLNet;
using TorchSharp;

namespace Svg.ML.Benchmarks;

/// <summary>
/// Featurization throughput through an ML.NET pipeline (Transform + a cursor reading the feature column of N in-memory
/// images) versus the raw batched API (<see cref="SvgFeaturizerTransformer.Featurize"/>) on the same images and batch
/// size. The two run alternately, several repetitions; the figure is the median of the per-repetition time ratios
/// (ML.NET / raw) minus one. Target: ≤ 5 %.
/// Options: <c>--models svg,tiny</c> (svg = DINOv3 ViT-S+/16 + the released residual ViT at 256 px, random weights;
/// tiny = 32 px test-size model), <c>--images N</c>, <c>--batch N</c>, <c>--reps N</c>.
/// </summary>
public sealed class FeaturizerOverheadBenchmark : IBenchmark
{
    public string Name => "featurizer_overhead";

    public IEnumerable<JsonObject> Run(BenchmarkOptions options)
    {
        var models = (options.Get("models") ?? "svg,tiny").Split(',', StringSplitOptions.RemoveEmptyEntries);
        foreach (var model in models)
        {
            int images = options.Int("images", model == "tiny" ? 4096 : 64);
            int batch = options.Int("batch", 16);
            int reps = options.Int("reps", model == "tiny" ? 9 : 5);
            yield return Measure(model, images, batch, reps);
        }
    }

    sealed class Row
    {
        [ImageType(256, 256)] public MLImage? Image { get; set; }
    }

    static (SvgEncoder Encoder, int Size) Create(string model)
    {
        torch.manual_seed(1);
        return model switch
        {
            "svg" => (new SvgEncoder(new DinoVisionTransformer(DinoV3Config.ViTSPlus16), SvgEncoderConfig.Released with { MaskRatio = 0 }), 256),
            "tiny" => (new SvgEncoder(
                new DinoVisionTransformer(DinoV3Config.ViTSPlus16 with { EmbedDim = 32, Depth = 2, NumHeads = 2, PatchSize = 8, FfnRatio = 2 }, 32),
                SvgEncoderConfig.Released with
                {
                    Residual = ResidualEncoderConfig.Released with { ImageSize = 32, PatchSize = 8, NumLayers = 1, NumHeads = 2, HiddenDim = 16, MlpDim = 32 },
                    MaskRatio = 0,
                }), 32),
            _ => throw new ArgumentException($"unknown model '{model}' (svg, tiny)"),
        };
    }

    static JsonObject Measure(string model, int n, int batch, int reps)
    {
        var (encoder, size) = Create(model);
        using var _ = encoder;
        var rng = new Random(1);
        var images = Enumerable.Range(0, n).Select(_ =>
        {
            var px = new byte[size * size * 4];
            rng.NextBytes(px);
            for (int i = 3; i < px.Length; i += 4) px[i] = 255;
            return MLImage.CreateFromPixels(size, size, MLPixelFormat.Bgra32, px);
        }).ToList();

        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(images.Select(im => new Row { Image = im }).ToList());
        var featurizer = ml.Transforms.SvgFeaturize(new SvgFeaturizerEstimator.Options
        {
            InputColumnName = "Image", FeatureMapColumnName = "Features", Encoder = encoder, BatchSize = batch, MaxStatisticsRows = Math.Min(n, 4 * batch),
        }).Fit(data);

        (double Wall, double Cpu) Raw() => Timed(() =>
        {
            using var f = featurizer.Featurize(images);
        });

        (double Wall, double Cpu) Pipeline() => Timed(() =>
        {
            var view = featurizer.Transform(data);
            var col = view.Schema["Features"];
            using var cursor = view.GetRowCursor(new[] { col });
            var getter = cursor.GetGetter<VBuffer<float>>(col);
            VBuffer<float> v = default;
            long rows = 0;
            while (cursor.MoveNext()) { getter(ref v); rows++; }
            if (rows != n) throw new InvalidOperationException($"read {rows} rows, expected {n}");
        });

        Console.Error.WriteLine($"featurizer_overhead: model {model}, {n} images of {size} px, batch {batch}, {reps} repetitions (+2 warm-up)");
        for (int w = 0; w < 2; w++) { Raw(); Pipeline(); }   // warm-up (JIT tiers, allocator)
        var raw = new List<(double Wall, double Cpu)>();
        var pipe = new List<(double Wall, double Cpu)>();
        for (int r = 0; r < reps; r++)
        {
            (double Wall, double Cpu) a, b;
            if (r % 2 == 0) { a = Raw(); b = Pipeline(); }
            else { b = Pipeline(); a = Raw(); }
            raw.Add(a); pipe.Add(b);
            Console.Error.WriteLine($"  rep {r}: raw {a.Wall:F3} s ({a.Cpu:F3} s CPU), ML.NET {b.Wall:F3} s ({b.Cpu:F3} s CPU), " +
                                    $"ratio {b.Wall / a.Wall:F4} wall, {b.Cpu / a.Cpu:F4} CPU");
        }
        foreach (var im in images) im.Dispose();
        var wallRatios = raw.Zip(pipe, (a, b) => b.Wall / a.Wall).ToList();
        var cpuRatios = raw.Zip(pipe, (a, b) => b.Cpu / a.Cpu).ToList();
        double overheadWall = Median(wallRatios) - 1, overheadCpu = Median(cpuRatios) - 1;
        double rawWall = Median(raw.Select(x => x.Wall).ToList()), pipeWall = Median(pipe.Select(x => x.Wall).ToList());
        return new JsonObject
        {
            ["model"] = model,
            ["image_size"] = size,
            ["images"] = n,
            ["batch"] = batch,
            ["reps"] = reps,
            ["raw_s_median"] = Math.Round(rawWall, 4),
            ["mlnet_s_median"] = Math.Round(pipeWall, 4),
            ["raw_images_per_s"] = Math.Round(n / rawWall, 2),
            ["mlnet_images_per_s"] = Math.Round(n / pipeWall, 2),
            ["wall_ratios"] = new JsonArray(wallRatios.Select(x => (JsonNode)Math.Round(x, 4)).ToArray()),
            ["cpu_ratios"] = new JsonArray(cpuRatios.Select(x => (JsonNode)Math.Round(x, 4)).ToArray()),
            ["overhead_wall_median"] = Math.Round(overheadWall, 4),
            ["overhead_cpu_median"] = Math.Round(overheadCpu, 4),
            ["load_average_1min"] = LoadAverage(),
            ["limit"] = 0.05,
            ["within_limit"] = overheadWall <= 0.05 && overheadCpu <= 0.05,
        };
    }

    /// <summary>Wall-clock and process CPU seconds of <paramref name="action"/> (CPU time is robust to other processes
    /// sharing the machine; wall time is what a user sees on an idle one).</summary>
    static (double Wall, double Cpu) Timed(Action action)
    {
        var process = Process.GetCurrentProcess();
        process.Refresh();
        var cpu0 = process.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        action();
        double wall = sw.Elapsed.TotalSeconds;
        process.Refresh();
        return (wall, (process.TotalProcessorTime - cpu0).TotalSeconds);
    }

    static double? LoadAverage()
    {
        try { return double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture); }
        catch (Exception) { return null; }
    }

    static double Median(List<double> xs)
    {
        var s = xs.OrderBy(x => x).ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }
}
