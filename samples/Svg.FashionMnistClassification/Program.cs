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
using Microsoft.ML;
using Microsoft.ML.Data;
using Svg.ML.Autoencoder;
using Svg.ML.Data;
using Svg.ML.Encoders;
using Svg.ML.Encoders.DinoV3;
using Svg.ML.MLNet;
using Svg.ML.Runtime;
using TorchSharp;

var opts = Args.Parse(args);
TorchRuntime.EnsureInitialized();
if (opts.Threads is int threads) torch.set_num_threads(threads);

var classNames = FashionMnist.ClassNames;
string work = Path.Combine(Path.GetTempPath(), "svgml-fashion-mnist-" + Environment.ProcessId);
Directory.CreateDirectory(work);
try
{
    // Fashion-MNIST's IDX files decoded and written as PNG files, so the pipeline decodes real image files.
    List<ImageRow> Pngs(bool trainSplit, int count)
    {
        using var images = FashionMnist.Load(train: trainSplit, limit: count);
        return images.SavePngs(work, trainSplit ? "train-" : "test-")
                     .Select(f => new ImageRow { ImagePath = f.Path, Label = (uint)f.Label }).ToList();
    }
    var train = Pngs(trainSplit: true, opts.Train);
    var test = Pngs(trainSplit: false, opts.Test);
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
                      $"first test image: true {classNames[(int)first.Label]}, predicted {classNames[(int)p.PredictedClass]}.");
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
