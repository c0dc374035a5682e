using System.Globalization;

namespace Svg.ML.DenseTasks;

/// <summary>Settings of the dense-task benchmark (defaults: about 30 minutes on two quiet CPU cores).</summary>
public sealed record DenseOptions
{
    public int TrainScenes { get; init; } = 1000;
    public int TestScenes { get; init; } = 1000;
    public int SceneSize { get; init; } = 64;
    /// <summary>Size the frozen ResNet18 sees (scenes are enlarged to it): 128 px gives an 8×8 grid of stage-3 features.</summary>
    public int BaseSize { get; init; } = 128;
    public int AutoencoderSteps { get; init; } = 150;
    public int AutoencoderBatch { get; init; } = 8;
    public double AutoencoderLearningRate { get; init; } = 1e-3;
    /// <summary>Steps of the linear heads.</summary>
    public int HeadSteps { get; init; } = 400;
    /// <summary>Steps of the decoder heads (more parameters than a linear probe: they need a longer run).</summary>
    public int DecoderSteps { get; init; } = 1500;
    /// <summary>Head seeds per cell (features are computed once; the table gives the mean and half the range).</summary>
    public int Seeds { get; init; } = 2;
    public int HeadBatch { get; init; } = 16;
    public double HeadLearningRate { get; init; } = 1e-3;
    public int DecoderChannels { get; init; } = 32;
    public int MiddleburySteps { get; init; } = 300;
    public string MiddleburyDirectory { get; init; } = Middlebury.DebianDirectory;
    public long Seed { get; init; }
    public int? Threads { get; init; }
    public string DocsDirectory { get; init; } = "docs";
    public bool Help { get; init; }

    public const string Usage = """
        Svg.ML.DenseTasks — the SVG paper's Table 4 at small scale: linear and decoder heads for segmentation and depth
        trained on (i) SVG features (frozen ResNet18 + residual), (ii) the frozen base's features alone, (iii) a plain
        autoencoder's latents, on synthetic scenes (Fashion-MNIST objects on textured ground, seeded), plus depth on the
        Middlebury 2014 motorcycle (Debian python3-skimage). Writes the "Dense tasks" section of DIR/results.md and
        DIR/figures/dense_*.png.

          dotnet run -c Release --project benchmarks/Svg.ML.DenseTasks -- [options]

          --train-scenes N (1000)  --test-scenes N (1000)  --size N (64)  --base-size N (128)
          --ae-steps N (150)       --ae-batch N (8)        --ae-lr X (1e-3)
          --head-steps N (400)     --decoder-steps N (1500)  --seeds N (2)  --head-batch N (16)  --head-lr X (1e-3)
          --decoder-channels N (32)
          --middlebury-steps N (300)  --middlebury DIR (/usr/lib/python3/dist-packages/skimage/data)
          --seed N (0)   --threads N   --docs DIR (docs)   --help
        """;

    public static DenseOptions Parse(IReadOnlyList<string> args)
    {
        var o = new DenseOptions();
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            string V() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{a} needs a value.");
            int I() => int.TryParse(V(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v > 0 ? v : throw new ArgumentException($"{a} needs a positive integer.");
            double D() => double.TryParse(V(), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v > 0 ? v : throw new ArgumentException($"{a} needs a positive number.");
            o = a switch
            {
                "--train-scenes" => o with { TrainScenes = I() },
                "--test-scenes" => o with { TestScenes = I() },
                "--size" => o with { SceneSize = I() },
                "--base-size" => o with { BaseSize = I() },
                "--ae-steps" => o with { AutoencoderSteps = I() },
                "--ae-batch" => o with { AutoencoderBatch = I() },
                "--ae-lr" => o with { AutoencoderLearningRate = D() },
                "--head-steps" => o with { HeadSteps = I() },
                "--decoder-steps" => o with { DecoderSteps = I() },
                "--seeds" => o with { Seeds = I() },
                "--head-batch" => o with { HeadBatch = I() },
                "--head-lr" => o with { HeadLearningRate = D() },
                "--decoder-channels" => o with { DecoderChannels = I() },
                "--middlebury-steps" => o with { MiddleburySteps = I() },
                "--middlebury" => o with { MiddleburyDirectory = V() },
                "--seed" => o with { Seed = long.Parse(V(), CultureInfo.InvariantCulture) },
                "--threads" => o with { Threads = I() },
                "--docs" => o with { DocsDirectory = V() },
                "--help" or "-h" => o with { Help = true },
                _ => throw new ArgumentException($"Unknown option '{a}' (see --help)."),
            };
        }
        return o;
    }
}
