using System.Globalization;

namespace Svg.Quickstart;

/// <summary>
/// Settings of the quickstart. The defaults run the whole pipeline on Fashion-MNIST with the ResNet18 base in a few
/// minutes on two CPU cores; the options scale it up (steps, model size, data, DINOv3 base, device).
/// </summary>
public sealed record QuickstartOptions
{
    /// <summary>Training images used (the first N of the training split).</summary>
    public int TrainImages { get; init; } = 4000;

    /// <summary>Held-out images used for the probe, reconstruction and FD reference (the first N of the test split).</summary>
    public int TestImages { get; init; } = 1000;

    /// <summary>Stage-1 (autoencoder) optimisation steps.</summary>
    public int AutoencoderSteps { get; init; } = 500;

    /// <summary>Stage-2 (diffusion) optimisation steps.</summary>
    public int DiffusionSteps { get; init; } = 1500;

    /// <summary>Stage-1 batch size.</summary>
    public int AutoencoderBatch { get; init; } = 16;

    /// <summary>Stage-2 batch size.</summary>
    public int DiffusionBatch { get; init; } = 64;

    /// <summary>Stage-1 learning rate (Adam, betas (0.5, 0.9) as the official recipe).</summary>
    public double AutoencoderLearningRate { get; init; } = 1e-3;

    /// <summary>Stage-2 learning rate (AdamW).</summary>
    public double DiffusionLearningRate { get; init; } = 1e-3;

    /// <summary>Stage-2 EMA decay (the official 0.9999 suits runs of hundreds of thousands of steps, not a quickstart).</summary>
    public double EmaDecay { get; init; } = 0.995;

    /// <summary>DiT size: <c>tiny</c> (width 128, depth 4), <c>small</c> (256, 6), or a paper preset S, B, L, XL.</summary>
    public string Model { get; init; } = "tiny";

    /// <summary>Data folder (null: Fashion-MNIST from Debian's <c>dataset-fashion-mnist</c>): an IDX folder
    /// (<c>train-images-idx3-ubyte[.gz]</c>, …) or an image folder (class subfolders; optional <c>train/</c> and <c>test/</c>).</summary>
    public string? DataPath { get; init; }

    /// <summary>DINOv3 weights (official <c>.pth</c>, Hugging Face safetensors or folder); null: the ResNet18 base.</summary>
    public string? DinoV3Path { get; init; }

    /// <summary>DINOv3 architecture of <see cref="DinoV3Path"/>: ViTSPlus16 (SVG's), ViTS16, ViTB16, ViTL16.</summary>
    public string DinoV3Preset { get; init; } = "ViTSPlus16";

    /// <summary>An official SVG autoencoder checkpoint (<c>svg_autoencoder_*.ckpt</c>, carries its DINOv3): skips stage 1
    /// and works at its 256 px.</summary>
    public string? SvgAutoencoderPath { get; init; }

    /// <summary>Image size the residual encoder and the decoder work at (null: 32, or 256 with an official autoencoder).</summary>
    public int? ImageSize { get; init; }

    /// <summary>Size images are enlarged to for the frozen base (null: 64 for ResNet18 → 4×4 grid, 256 for DINOv3 → 16×16).</summary>
    public int? BaseSize { get; init; }

    /// <summary>Device: cpu, cuda, cuda:N (CUDA needs a TorchSharp CUDA backend package instead of TorchSharp-cpu).</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Compute precision of the DiT in training and sampling: fp32 or bf16 (float32 master weights).</summary>
    public Svg.ML.Runtime.Precision Precision { get; init; } = Svg.ML.Runtime.Precision.Fp32;

    /// <summary>Output folder (grid PNG, model, checkpoints).</summary>
    public string OutputDirectory { get; init; } = "svg-quickstart";

    /// <summary>A model folder saved by an earlier run: skip training, sample and evaluate it.</summary>
    public string? LoadPath { get; init; }

    /// <summary>Data-parallel over the ranks of an MPI launch (also detected from PMI_SIZE): both training stages and
    /// the featurization are shared; --batch / --ae-batch stay the global batches; rank 0 samples, evaluates and writes.</summary>
    public bool Distributed { get; init; }

    /// <summary>Seed of everything random.</summary>
    public long Seed { get; init; }

    /// <summary>Generated images for the Fréchet distance.</summary>
    public int FdSamples { get; init; } = 500;

    /// <summary>Euler steps of the sampler.</summary>
    public int SamplingSteps { get; init; } = 25;

    /// <summary>Samples per class in the grid PNG.</summary>
    public int GridColumns { get; init; } = 8;

    /// <summary>Feature-cache folder (null: Svg.ML's default, <c>$SVG_ML_FEATURE_CACHE</c> or <c>~/.cache/svg.ml/features</c>).</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>CPU threads for TorchSharp (null: its default, one per core).</summary>
    public int? Threads { get; init; }

    /// <summary>Print the help and exit.</summary>
    public bool Help { get; init; }

    /// <summary>The usage text.</summary>
    public const string Usage = """
        Svg.Quickstart — SVG (latent diffusion without a VAE) end to end on Fashion-MNIST with ML.NET's ResNet18 as the
        frozen base: train the autoencoder (stage 1), featurize, train the diffusion transformer (stage 2), sample a
        class-conditional grid, and report linear-probe accuracy, reconstruction PSNR/SSIM and a Fréchet distance.

          dotnet run -c Release --project samples/Svg.Quickstart -- [options]

        Scale:
          --steps N              stage-2 (diffusion) steps                         (default 1500)
          --ae-steps N           stage-1 (autoencoder) steps                       (default 500)
          --batch N              stage-2 batch                                     (default 64)
          --ae-batch N           stage-1 batch                                     (default 16)
          --lr X / --ae-lr X     learning rates                                    (default 1e-3 / 1e-3)
          --ema X                EMA decay of the DiT weights                      (default 0.995)
          --model NAME           DiT size: tiny (128 wide, depth 4), small (256, 6), S, B, L, XL   (default tiny)
          --train-images N       training images                                   (default 4000)
          --test-images N        held-out images                                   (default 1000)
          --fd-samples N         generated images for the FD                       (default 500)
          --sampling-steps N     Euler steps when sampling                         (default 25)
        Data and base encoder:
          --data DIR             IDX folder (train-images-idx3-ubyte[.gz], ...) or image folder (class subfolders,
                                 optionally under train/ and test/); default: Fashion-MNIST from Debian
          --dinov3 FILE          DINOv3 weights (official .pth, HF safetensors or folder) as the base instead of ResNet18
          --dinov3-preset NAME   ViTSPlus16 (default, SVG's), ViTS16, ViTB16, ViTL16
          --svg-autoencoder FILE official SVG autoencoder checkpoint: skips stage 1, works at 256 px
          --image-size N         size the residual encoder and decoder work at     (default 32)
          --base-size N          size images are enlarged to for the base          (default 64 ResNet18, 256 DINOv3)
        Run:
          --device D             cpu, cuda, cuda:N (CUDA needs a TorchSharp CUDA backend package in place of
                                 TorchSharp-cpu)                                   (default cpu)
          --precision P          DiT compute in training and sampling: fp32 or bf16 (default fp32)
          --out DIR              output folder                                     (default svg-quickstart)
          --load DIR             load a model saved by an earlier run (DIR/model): sample and evaluate only
          --cache DIR            feature-cache folder                              (default ~/.cache/svg.ml/features)
          --seed N               seed                                              (default 0)
          --threads N            CPU threads
          --distributed          data-parallel over MPI ranks (detected under mpiexec/srun; needs MPICH):
                                 mpiexec.mpich -n 2 dotnet Svg.Quickstart.dll --distributed
          --help                 this text

        Reruns with the same settings resume the finished stages from OUT/checkpoints and read the features from the cache.
        """;

    /// <summary>Parses command-line arguments; throws <see cref="ArgumentException"/> with a readable message on errors.</summary>
    public static QuickstartOptions Parse(IReadOnlyList<string> args)
    {
        var o = new QuickstartOptions();
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            string Value()
            {
                if (i + 1 >= args.Count) throw new ArgumentException($"{a} needs a value.");
                return args[++i];
            }
            int Int() => int.TryParse(Value(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v > 0
                ? v : throw new ArgumentException($"{a} needs a positive integer.");
            double Real() => double.TryParse(Value(), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v > 0
                ? v : throw new ArgumentException($"{a} needs a positive number.");
            o = a switch
            {
                "--steps" => o with { DiffusionSteps = Int() },
                "--ae-steps" => o with { AutoencoderSteps = Int() },
                "--batch" => o with { DiffusionBatch = Int() },
                "--ae-batch" => o with { AutoencoderBatch = Int() },
                "--lr" => o with { DiffusionLearningRate = Real() },
                "--ae-lr" => o with { AutoencoderLearningRate = Real() },
                "--ema" => o with { EmaDecay = Real() is var e && e < 1 ? e : throw new ArgumentException("--ema must lie in (0, 1).") },
                "--model" => o with { Model = Value() },
                "--train-images" => o with { TrainImages = Int() },
                "--test-images" => o with { TestImages = Int() },
                "--fd-samples" => o with { FdSamples = Int() },
                "--sampling-steps" => o with { SamplingSteps = Int() },
                "--data" => o with { DataPath = Value() },
                "--dinov3" => o with { DinoV3Path = Value() },
                "--dinov3-preset" => o with { DinoV3Preset = Value() },
                "--svg-autoencoder" => o with { SvgAutoencoderPath = Value() },
                "--image-size" => o with { ImageSize = Int() },
                "--base-size" => o with { BaseSize = Int() },
                "--device" => o with { Device = Value() },
                "--precision" => o with { Precision = Value().ToLowerInvariant() switch
                {
                    "fp32" => Svg.ML.Runtime.Precision.Fp32,
                    "bf16" => Svg.ML.Runtime.Precision.Bf16,
                    var p => throw new ArgumentException($"--precision {p}: use fp32 or bf16."),
                } },
                "--out" => o with { OutputDirectory = Value() },
                "--load" => o with { LoadPath = Value() },
                "--cache" => o with { CacheDirectory = Value() },
                "--seed" => o with { Seed = long.TryParse(Value(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long s) ? s : throw new ArgumentException("--seed needs an integer.") },
                "--threads" => o with { Threads = Int() },
                "--distributed" => o with { Distributed = true },
                "--help" or "-h" or "-?" => o with { Help = true },
                _ => throw new ArgumentException($"Unknown option '{a}' (see --help)."),
            };
        }
        if (o.FdSamples < 2) throw new ArgumentException("--fd-samples must be at least 2.");
        return o;
    }
}
