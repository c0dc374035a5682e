using Microsoft.ML;
using Svg.ML.Diffusion;
using Svg.ML.MLNet;
using Svg.ML.Tests.Data;
using Svg.Quickstart;
using Xunit;

namespace Svg.ML.Tests.Samples;

/// <summary>
/// The quickstart (samples/Svg.Quickstart) end to end at a toy size, and its command line. The pipeline test trains
/// both stages for a few steps on 48 Fashion-MNIST images, then reloads the saved model and re-evaluates it: every
/// figure must come out identical, which checks the save/load format (weights, normaliser, alignment statistics)
/// and that sampling and evaluation are deterministic.
/// </summary>
public sealed class QuickstartTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "svgml-quickstart-test-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    QuickstartOptions Tiny() => new()
    {
        TrainImages = 48,
        TestImages = 24,
        AutoencoderSteps = 3,
        AutoencoderBatch = 8,
        DiffusionSteps = 4,
        DiffusionBatch = 16,
        FdSamples = 20,
        SamplingSteps = 2,
        GridColumns = 2,
        OutputDirectory = Path.Combine(_dir, "out"),
        CacheDirectory = Path.Combine(_dir, "cache"),
        DataPath = Path.GetDirectoryName(TestData.FashionMnist("t10k-images-idx3-ubyte.gz")),
    };

    [Fact]
    public void Pipeline_trains_saves_and_reloads_to_identical_figures()
    {
        var output = new StringWriter();
        var first = QuickstartPipeline.Run(Tiny(), output);
        string log = output.ToString();

        Assert.True(File.Exists(first.GridPath), log);
        Assert.True(File.Exists(first.ReconstructionPath), log);
        Assert.True(File.Exists(Path.Combine(first.ModelPath, "manifest.json")), log);
        Assert.Equal("[264, 4, 4]", first.Latent);
        Assert.Equal(256, first.ProbeBase.Dimensions);
        Assert.Equal(264, first.ProbeSvg.Dimensions);
        Assert.InRange(first.ProbeSvg.Accuracy, 0, 1);
        Assert.True(double.IsFinite(first.Fd.Distance) && first.Fd.Distance > 0, log);
        Assert.Contains("ResNet18", first.Fd.EncoderName);
        Assert.Equal(20, first.Fd.CountA);
        Assert.True(double.IsFinite(first.Reconstruction.Psnr), log);
        foreach (var stage in new[] { "[1/7]", "[3/7]", "[5/7]", "[7/7]", "Summary", "Linear probe", "FD", first.Fd.EncoderName })
            Assert.Contains(stage, log);

        var reloaded = QuickstartPipeline.Run(Tiny() with { LoadPath = first.ModelPath }, new StringWriter());
        Assert.Equal(first.Fd.Distance, reloaded.Fd.Distance, 6);
        Assert.Equal(first.Reconstruction.Psnr, reloaded.Reconstruction.Psnr, 6);
        Assert.Equal(first.ProbeSvg.Accuracy, reloaded.ProbeSvg.Accuracy);
        Assert.Equal(first.ProbeBase.Accuracy, reloaded.ProbeBase.Accuracy);

        // The ML.NET generator saved beside the model samples exactly what the quickstart's own sampling gives.
        string zip = Path.Combine(first.ModelPath, QuickstartModel.GeneratorFileName);
        using var generator = Assert.IsType<SvgGenerator>(SvgModel.Load(new MLContext(seed: 0), zip, out _));
        var sampler = new SamplerOptions(Steps: 2, CfgScale: 4.0);
        generator.Sampler = sampler;
        int[] labels = [0, 3, 7];
        using var viaMlNet = generator.GenerateImageTensors(labels, [11, 12, 13]);
        using var model = QuickstartModel.Load(first.ModelPath);
        using var latents = Generation.SampleLatents(model.DiT, model.Normalizer, labels, seed: 11, sampler);   // sample i: seed 11 + i
        using var direct = Generation.Decode(model.Decoder, latents);
        Assert.Equal(new long[] { 3, 3, 32, 32 }, viaMlNet.shape);
        Assert.True(direct.allclose(viaMlNet, rtol: 0, atol: 1e-4), $"max |Δ| = {(direct - viaMlNet).abs().max().item<float>()}");
    }

    [Fact]
    public void Pipeline_runs_with_a_DinoV3_base()
    {
        // Random ViT-S/16 weights under the official keys stand in for a downloaded checkpoint (none is available offline).
        Directory.CreateDirectory(_dir);
        string weights = Path.Combine(_dir, "dinov3_vits16.safetensors");
        using (var vit = new Svg.ML.Encoders.DinoV3.DinoVisionTransformer(Svg.ML.Encoders.DinoV3.DinoV3Config.ViTS16))
        {
            // TorchSharp 0.107's nn.init.trunc_normal_ (used by the DINOv3 init) yields a NaN about once in 10^7 values.
            using (TorchSharp.torch.no_grad())
                foreach (var p in vit.parameters()) p.nan_to_num_(0);
            Svg.ML.Checkpoints.Checkpoint.SaveModule(vit, weights);
        }
        var output = new StringWriter();
        var result = QuickstartPipeline.Run(Tiny() with { DinoV3Path = weights, DinoV3Preset = "ViTS16", BaseSize = 64, FdSamples = 10 }, output);
        Assert.Equal("[392, 4, 4]", result.Latent);
        Assert.Contains("DINOv3 ViT-S/16 at 64 px", result.BaseEncoder);
        Assert.Equal(384, result.ProbeBase.Dimensions);
        Assert.True(double.IsFinite(result.Fd.Distance), output.ToString());
    }

    [Fact]
    public void Missing_dataset_prints_the_install_command_and_exits_2()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = QuickstartApp.Run([], output, error, fashionMnistDirectory: Path.Combine(_dir, "no-such-folder"));
        Assert.Equal(2, code);
        Assert.Contains("sudo apt-get install -y dataset-fashion-mnist", error.ToString());
        Assert.Contains("no-such-folder", error.ToString());
        Assert.Equal("", output.ToString());
    }

    [Fact]
    public void Help_and_bad_options()
    {
        var output = new StringWriter();
        Assert.Equal(0, QuickstartApp.Run(["--help"], output, new StringWriter()));
        foreach (var option in new[] { "--steps", "--ae-steps", "--model", "--data", "--dinov3", "--device", "--out", "--load", "--train-images" })
            Assert.Contains(option, output.ToString());
        var error = new StringWriter();
        Assert.Equal(1, QuickstartApp.Run(["--steps", "-3"], new StringWriter(), error));
        Assert.Contains("--steps", error.ToString());
        Assert.Equal(1, QuickstartApp.Run(["--bogus"], new StringWriter(), new StringWriter()));
    }

    [Fact]
    public void Options_parse()
    {
        var o = QuickstartOptions.Parse(["--steps", "10", "--ae-steps", "5", "--model", "small", "--device", "cuda:1", "--train-images", "100",
                                         "--dinov3", "w.pth", "--out", "o", "--load", "m", "--lr", "2e-4", "--seed", "7"]);
        Assert.Equal((10, 5, "small", "cuda:1", 100, "w.pth", "o", "m", 2e-4, 7L),
                     (o.DiffusionSteps, o.AutoencoderSteps, o.Model, o.Device, o.TrainImages, o.DinoV3Path, o.OutputDirectory, o.LoadPath,
                      o.DiffusionLearningRate, o.Seed));
        var spec = BaseSpec.FromOptions(o);
        Assert.Equal((BaseSpec.DinoV3Kind, 32, 256), (spec.Kind, spec.ImageSize, spec.BaseSize));
        Assert.Equal((BaseSpec.ResNet18Kind, 32, 64), (BaseSpec.FromOptions(new QuickstartOptions()).Kind, 32, 64));
    }

    [Fact]
    public void Decoder_and_padding_sizes()
    {
        Assert.Equal(new[] { 1, 1, 2, 4 }, Architecture.Decoder(264, 32, 4).ChMult);
        Assert.Equal(new[] { 2, 4 }, Architecture.Decoder(392, 32, 16).ChMult);
        Assert.Throws<ArgumentException>(() => Architecture.Decoder(264, 28, 4));
        using var images = Svg.ML.Data.FashionMnist.Load(train: false, limit: 3, directory: Path.GetDirectoryName(TestData.FashionMnist("t10k-images-idx3-ubyte.gz")));
        using var padded = QuickstartData.Prepare(images, 32);
        Assert.Equal((32, 32), (padded.Height, padded.Width));
        // Zero padding keeps every original pixel and adds a 2-pixel black border.
        using var inner = padded.Pixels.narrow(2, 2, 28).narrow(3, 2, 28);
        Assert.True(inner.eq(images.Pixels).all().item<bool>());
        Assert.Equal(0, padded.Pixels.narrow(2, 0, 2).sum().item<long>());
    }

    [Fact]
    public void Residual_encoder_initialisation_follows_the_seed_only()
    {
        // The stage-1 residual encoder is drawn from the run's seed, whatever the global generator did before.
        using var baseEncoder = Svg.ML.Encoders.ResNet18.FromModelDirectory();
        static float[] Weights(Svg.ML.Autoencoder.SvgEncoder e) =>
            e.ResidualEncoder.parameters().SelectMany(p => p.detach().flatten().data<float>().ToArray()).ToArray();
        TorchSharp.torch.manual_seed(1);
        using var a = Architecture.NewSvgEncoder(baseEncoder, 32, seed: 5);
        using (TorchSharp.torch.rand(17)) { }
        TorchSharp.torch.manual_seed(2);
        using var b = Architecture.NewSvgEncoder(baseEncoder, 32, seed: 5);
        using var c = Architecture.NewSvgEncoder(baseEncoder, 32, seed: 6);
        Assert.Equal(Weights(a), Weights(b));
        Assert.NotEqual(Weights(a), Weights(c));
    }
}
