using System.Globalization;

namespace Svg.ML.PaperClaims;

/// <summary>Settings of the small-scale reproduction (defaults: about 25 minutes on two CPU cores).</summary>
public sealed record ClaimsOptions
{
    public int TrainImages { get; init; } = 6000;
    public int TestImages { get; init; } = 2000;
    public int AutoencoderSteps { get; init; } = 600;
    public int AutoencoderBatch { get; init; } = 16;
    public double AutoencoderLearningRate { get; init; } = 1e-3;
    public int DiffusionSteps { get; init; } = 2000;
    public int DiffusionBatch { get; init; } = 64;
    public double DiffusionLearningRate { get; init; } = 1e-3;
    public double EmaDecay { get; init; } = 0.99;
    /// <summary>Training steps at which the FD is measured (the last one is <see cref="DiffusionSteps"/>).</summary>
    public int[] Milestones { get; init; } = [250, 500, 1000, 2000];
    public int FdSamples { get; init; } = 1000;
    public int CurveSamplingSteps { get; init; } = 10;
    public int[] TableSamplingSteps { get; init; } = [5, 10, 25];
    public double Cfg { get; init; } = 1.5;
    public string Model { get; init; } = "tiny";
    public int ClassifierImages { get; init; } = 20000;
    public int ClassifierEpochs { get; init; } = 3;
    public int ReconstructionImages { get; init; } = 1000;
    public long Seed { get; init; }
    public int? Threads { get; init; }
    /// <summary>Where docs/results.md and docs/results/*.png are written.</summary>
    public string DocsDirectory { get; init; } = "docs";
    /// <summary>Scratch folder (checkpoints, feature cache); emptied at the start.</summary>
    public string WorkDirectory { get; init; } = Path.Combine(Path.GetTempPath(), "svg-paper-claims");
    public bool Help { get; init; }
    /// <summary>Rewrite docs/results.md and the plots from docs/results/measurements.json without running anything.</summary>
    public bool ReportOnly { get; init; }

    public const string Usage = """
        Svg.ML.PaperClaims — SVG's claims at small scale on Fashion-MNIST: the same small DiT trained on (i) SVG latents
        (frozen ResNet18 + residual encoder) and (ii) the latents of a plain autoencoder of the same shape trained from
        scratch with the same budget. Writes docs/results.md and docs/results/*.png.

          dotnet run -c Release --project benchmarks/Svg.ML.PaperClaims -- [options]

          --train-images N   (6000)   --test-images N (2000)    --ae-steps N (600)   --ae-batch N (16)   --ae-lr X (1e-3)
          --steps N          (2000)   --batch N (64)            --lr X (1e-3)        --ema X (0.99)      --model NAME (tiny)
          --milestones LIST  (250,500,1000,2000)                --fd-samples N (1000)
          --curve-sampling-steps N (10)   --table-sampling-steps LIST (5,10,25)      --cfg X (1.5)
          --classifier-images N (20000)   --classifier-epochs N (3)                  --recon-images N (1000)
          --seed N (0)   --threads N   --docs DIR (docs)   --work DIR (temp folder, emptied first)
          --report-only      rewrite DIR/results.md and the plots from DIR/results/measurements.json   --help
        """;

    public static ClaimsOptions Parse(IReadOnlyList<string> args)
    {
        var o = new ClaimsOptions();
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            string V() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{a} needs a value.");
            int I() => int.TryParse(V(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v > 0 ? v : throw new ArgumentException($"{a} needs a positive integer.");
            double D() => double.TryParse(V(), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v > 0 ? v : throw new ArgumentException($"{a} needs a positive number.");
            int[] L() => V().Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
            o = a switch
            {
                "--train-images" => o with { TrainImages = I() },
                "--test-images" => o with { TestImages = I() },
                "--ae-steps" => o with { AutoencoderSteps = I() },
                "--ae-batch" => o with { AutoencoderBatch = I() },
                "--ae-lr" => o with { AutoencoderLearningRate = D() },
                "--steps" => o with { DiffusionSteps = I() },
                "--batch" => o with { DiffusionBatch = I() },
                "--lr" => o with { DiffusionLearningRate = D() },
                "--ema" => o with { EmaDecay = D() },
                "--model" => o with { Model = V() },
                "--milestones" => o with { Milestones = L() },
                "--fd-samples" => o with { FdSamples = I() },
                "--curve-sampling-steps" => o with { CurveSamplingSteps = I() },
                "--table-sampling-steps" => o with { TableSamplingSteps = L() },
                "--cfg" => o with { Cfg = D() },
                "--classifier-images" => o with { ClassifierImages = I() },
                "--classifier-epochs" => o with { ClassifierEpochs = I() },
                "--recon-images" => o with { ReconstructionImages = I() },
                "--seed" => o with { Seed = long.Parse(V(), CultureInfo.InvariantCulture) },
                "--threads" => o with { Threads = I() },
                "--docs" => o with { DocsDirectory = V() },
                "--work" => o with { WorkDirectory = V() },
                "--report-only" => o with { ReportOnly = true },
                "--help" or "-h" => o with { Help = true },
                _ => throw new ArgumentException($"Unknown option '{a}' (see --help)."),
            };
        }
        var milestones = o.Milestones.Where(m => m < o.DiffusionSteps).Append(o.DiffusionSteps).Distinct().Order().ToArray();
        return o with { Milestones = milestones };
    }
}
