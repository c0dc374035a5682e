// Downstream classification with SVG features in an ML.NET pipeline:
//   LoadImages → SvgFeaturize (pooled) → MapValueToKey → LbfgsMaximumEntropy → Evaluate,
// on Fashion-MNIST images (Debian package dataset-fashion-mnist: `sudo apt-get install dataset-fashion-mnist`).
//
//   dotnet run -c Release --project samples/Svg.FashionMnistClassification -- [options]
//     --train N            training images (default 2000)        --test N     test images (default 1000)
//     --dino PATH          DINOv3 weights (.pth or HF safetensors); without it a tiny random-weight encoder is used
//     --preset NAME        DINOv3 architecture: ViTSPlus16 (default), ViTS16, ViTB16, ViTL16
//     --autoencoder PATH   SVG autoencoder checkpoint (adds the 8 residual channels)
//     --batch N            rows per forward pass (default: 16 on CPU)
//     --threads N          TorchSharp CPU threads
//     --gpu N              CUDA device (needs a TorchSharp CUDA backend package instead of TorchSharp-cpu)
//
// Without --dino the encoder is a tiny random-weight model: the accuracy it reaches is a plumbing check of the pipeline
// (features stay aligned with their labels), not a claim about SVG features.
using System.IO.Compression;
using Microsoft.ML;
using Microsoft.ML.Data;
using Svg.ML.Autoencoder;
using Svg.ML.Encoders;
using Svg.ML.Encoders.DinoV3;
using Svg.ML.MLNet;
using Svg.ML.Runtime;
using TorchSharp;

var opts = Args.Parse(args);
TorchRuntime.EnsureInitialized();
if (opts.Threads is int threads) torch.set_num_threads(threads);

const string dataDir = "/usr/share/datasets/fashion-mnist";
string[] classNames = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" };
string work = Path.Combine(Path.GetTempPath(), "svgml-fashion-mnist-" + Environment.ProcessId);
Directory.CreateDirectory(work);
try
{
    var train = Idx.ToPngs(dataDir, "train", opts.Train, work);
    var test = Idx.ToPngs(dataDir, "t10k", opts.Test, work);
    Console.WriteLine($"Fashion-MNIST: {train.Count} training and {test.Count} test images written as PNG files to {work}.");

    var ml = new MLContext(seed: 1) { GpuDeviceId = opts.Gpu, FallbackToCpu = true };
    ml.RegisterSvg();   // lets mlContext.Transforms.SvgFeaturize use this context's device, seed and log

    var featurizerOptions = new SvgFeaturizerEstimator.Options
    {
        InputColumnName = "Image",
        FeatureMapColumnName = null,
        PooledColumnName = "Features",
        BatchSize = opts.Batch,
    };
    string encoderText;
    if (opts.Dino is not null)
    {
        featurizerOptions.DinoCheckpointPath = opts.Dino;
        featurizerOptions.DinoConfig = opts.Preset;
        featurizerOptions.AutoencoderCheckpointPath = opts.Autoencoder;
        encoderText = $"{opts.Preset.Name} from {opts.Dino}" + (opts.Autoencoder is null ? "" : $" + residual channels from {opts.Autoencoder}");
    }
    else
    {
        featurizerOptions.Encoder = TinyEncoder.Create();
        encoderText = "a tiny random-weight SVG encoder (32 px, patch 8, 32 + 8 channels): accuracy is a plumbing check, not a quality claim";
    }
    Console.WriteLine($"Encoder: {encoderText}.");

    var trainData = ml.Data.LoadFromEnumerable(train);
    var testData = ml.Data.LoadFromEnumerable(test);
    var pipeline = ml.Transforms.LoadImages("Image", null, nameof(ImageRow.ImagePath))
        .Append(ml.Transforms.SvgFeaturize(featurizerOptions))
        .Append(ml.Transforms.Conversion.MapValueToKey("LabelKey", nameof(ImageRow.Label)))
        .AppendCacheCheckpoint(ml)
        .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy("LabelKey", "Features"))
        .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"));

    var clock = System.Diagnostics.Stopwatch.StartNew();
    var model = pipeline.Fit(trainData);
    Console.WriteLine($"Fitted in {clock.Elapsed.TotalSeconds:F1} s.");
    var metrics = ml.MulticlassClassification.Evaluate(model.Transform(testData), "LabelKey");
    Console.WriteLine($"Test: macro accuracy {metrics.MacroAccuracy:F4}, micro accuracy {metrics.MicroAccuracy:F4}, log loss {metrics.LogLoss:F4}.");

    // Save the whole chain (ML.NET and Svg.ML transformers) and load it back.
    string modelPath = Path.Combine(work, "fashion-mnist-svg.zip");
    SvgModel.Save(ml, model, trainData.Schema, modelPath);
    var loaded = SvgModel.Load(ml, modelPath, out _);
    var engine = ml.Model.CreatePredictionEngine<ImageRow, Prediction>(loaded);
    var first = test[0];
    var p = engine.Predict(first);
    Console.WriteLine($"Saved to {modelPath} ({new FileInfo(modelPath).Length / 1024} KiB) and reloaded; " +
                      $"first test image: true {classNames[first.Label]}, predicted {classNames[p.PredictedClass]}.");
}
finally
{
    Directory.Delete(work, recursive: true);
}

sealed class ImageRow
{
    public string ImagePath { get; set; } = "";
    public uint Label { get; set; }
}

sealed class Prediction
{
    public uint PredictedClass { get; set; }
}

static class TinyEncoder
{
    public static SvgEncoder Create()
    {
        torch.manual_seed(1);
        var dino = new DinoVisionTransformer(DinoV3Config.ViTSPlus16 with
        {
            Name = "DINOv3 tiny (random)", EmbedDim = 32, Depth = 2, NumHeads = 2, PatchSize = 8, FfnRatio = 2, LayerScaleInit = 1.0,
        }, defaultImageSize: 32);
        return new SvgEncoder(dino, SvgEncoderConfig.Released with
        {
            Residual = ResidualEncoderConfig.Released with { ImageSize = 32, PatchSize = 8, NumLayers = 1, NumHeads = 2, HiddenDim = 16, MlpDim = 32 },
            MaskRatio = 0,
        });
    }
}

static class Idx
{
    /// <summary>Decodes the first <paramref name="count"/> images of an IDX split into PNG files.</summary>
    public static List<ImageRow> ToPngs(string dir, string split, int count, string outDir)
    {
        string images = Path.Combine(dir, $"{split}-images-idx3-ubyte.gz"), labels = Path.Combine(dir, $"{split}-labels-idx1-ubyte.gz");
        if (!File.Exists(images) || !File.Exists(labels))
            throw new FileNotFoundException($"Fashion-MNIST not found in {dir}: sudo apt-get install dataset-fashion-mnist");
        byte[] img = Read(images), lab = Read(labels);
        int n = BigEndian(img, 4), h = BigEndian(img, 8), w = BigEndian(img, 12);
        var rows = new List<ImageRow>();
        var rgba = new byte[h * w * 4];
        for (int i = 0; i < Math.Min(count, n); i++)
        {
            for (int p = 0; p < h * w; p++)
            {
                byte g = img[16 + i * h * w + p];
                rgba[4 * p] = rgba[4 * p + 1] = rgba[4 * p + 2] = g;
                rgba[4 * p + 3] = 255;
            }
            string path = Path.Combine(outDir, $"{split}-{i:D5}.png");
            using (var im = MLImage.CreateFromPixels(w, h, MLPixelFormat.Rgba32, rgba)) im.Save(path);
            rows.Add(new ImageRow { ImagePath = path, Label = lab[8 + i] });
        }
        return rows;
    }

    static byte[] Read(string path)
    {
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var ms = new MemoryStream();
        gz.CopyTo(ms);
        return ms.ToArray();
    }

    static int BigEndian(byte[] b, int o) => (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3];
}

sealed record Args(int Train, int Test, string? Dino, DinoV3Config Preset, string? Autoencoder, int Batch, int? Threads, int? Gpu)
{
    public static Args Parse(string[] a)
    {
        var r = new Args(2000, 1000, null, DinoV3Config.ViTSPlus16, null, 0, null, null);
        for (int i = 0; i < a.Length; i++)
        {
            string Next() => i + 1 < a.Length ? a[++i] : throw new ArgumentException($"{a[i]} needs a value");
            r = a[i] switch
            {
                "--train" => r with { Train = int.Parse(Next()) },
                "--test" => r with { Test = int.Parse(Next()) },
                "--dino" => r with { Dino = Next() },
                "--preset" => r with { Preset = Next() switch
                {
                    "ViTSPlus16" => DinoV3Config.ViTSPlus16, "ViTS16" => DinoV3Config.ViTS16, "ViTB16" => DinoV3Config.ViTB16, "ViTL16" => DinoV3Config.ViTL16,
                    var p => throw new ArgumentException($"unknown preset {p}"),
                } },
                "--autoencoder" => r with { Autoencoder = Next() },
                "--batch" => r with { Batch = int.Parse(Next()) },
                "--threads" => r with { Threads = int.Parse(Next()) },
                "--gpu" => r with { Gpu = int.Parse(Next()) },
                var x => throw new ArgumentException($"unknown option {x}"),
            };
        }
        return r;
    }
}
