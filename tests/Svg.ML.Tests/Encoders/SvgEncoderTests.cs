using Svg.ML.Autoencoder;
using Svg.ML.Encoders;
using Svg.ML.Encoders.DinoV3;
using Svg.ML.Runtime;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Encoders;

public class SvgEncoderTests
{
    public SvgEncoderTests() => TorchRuntime.EnsureInitialized();

    static double MaxAbsDiff(Tensor a, Tensor b) => (a.to(float64) - b.to(float64)).abs().max().item<double>();

    static Tensor[] Batches(int count, int size, long seed) =>
        Enumerable.Range(0, count).Select(i => TinyEncoders.Images(size, 32, 32, seed + i)).ToArray();

    [Fact]
    public void Latent_is_base_channels_then_residual_channels_on_the_patch_grid()
    {
        using var svg = TinyEncoders.Svg();
        svg.eval();
        using var _ = no_grad();
        using var rgb = TinyEncoders.Images(3, 32, 32, 1);
        using var z = svg.Encode(rgb);
        Assert.Equal(new long[] { 3, 32 + 8, 2, 2 }, z.shape);
        Assert.Equal(40, svg.Channels);
        // The first C channels are the DINOv3 grid (unchanged by the alignment).
        using var dinoGrid = svg.BaseEncoder.EncodeGrid(ImageNetNormalization.Normalize(rgb));
        Assert.Equal(0, MaxAbsDiff(z[.., ..32], dinoGrid));
        // Encode(rgb01) is the official encode of the ImageNet-normalised image.
        using var official = svg.EncodeNormalized(ImageNetNormalization.Normalize(rgb));
        Assert.Equal(0, MaxAbsDiff(z, official));
    }

    [Fact]
    public void Stored_alignment_makes_a_row_independent_of_its_batch()
    {
        using var svg = TinyEncoders.Svg(new SvgEncoderConfig { Residual = TinyEncoders.Residual, Alignment = ResidualAlignment.Stored });
        svg.eval();
        svg.Statistics = svg.EstimateAlignment(Batches(3, 4, 100));
        Assert.Equal(12, svg.Statistics.Rows);
        using var _ = no_grad();
        using var batch = TinyEncoders.Images(3, 32, 32, 7);
        using var together = svg.Encode(batch);
        for (int i = 0; i < 3; i++)
        {
            using var alone = svg.Encode(batch[i..(i + 1)]);
            Assert.True(MaxAbsDiff(alone, together[i..(i + 1)]) < 1e-5, $"row {i}: {MaxAbsDiff(alone, together[i..(i + 1)])}");
        }

        // The official batch statistics do depend on the batch (this is what Stored removes).
        using var official = TinyEncoders.Svg();
        official.eval();
        using var zBatch = official.Encode(batch);
        using var zAlone = official.Encode(batch[..1]);
        Assert.True(MaxAbsDiff(zAlone, zBatch[..1]) > 1e-3);
    }

    [Fact]
    public void Stored_statistics_of_the_batch_itself_reproduce_the_official_batch_alignment()
    {
        using var svg = TinyEncoders.Svg();
        svg.eval();
        using var _ = no_grad();
        using var batch = TinyEncoders.Images(5, 32, 32, 21);
        using var official = svg.Encode(batch);
        var stats = svg.EstimateAlignment(new[] { batch[..2], batch[2..] });   // two uneven chunks of the same rows
        using var stored = TinyEncoders.Svg(new SvgEncoderConfig { Residual = TinyEncoders.Residual, Alignment = ResidualAlignment.Stored });
        stored.eval();
        stored.Statistics = stats;
        using var z = stored.Encode(batch);
        Assert.True(MaxAbsDiff(z, official) < 1e-5, $"{MaxAbsDiff(z, official)}");
    }

    [Fact]
    public void Accumulator_merges_batches_exactly()
    {
        var generator = new Generator(3, CPU);
        var baseParts = new[] { 2, 5, 1 }.Select(b => randn(new long[] { b, 6, 9 }, generator: generator) * 2 + 1).ToArray();
        var residualParts = baseParts.Select(p => randn(new long[] { p.shape[0], 3, 9 }, generator: generator) * 0.5 - 0.2).ToArray();
        using var accumulator = new AlignmentStatisticsAccumulator();
        for (int i = 0; i < baseParts.Length; i++) accumulator.Add(baseParts[i], residualParts[i]);
        var s = accumulator.ToStatistics();

        static (double Mean, double Std) Direct(Tensor x)
        {
            var x64 = x.to(float64);
            var dims = new long[] { 0, 2 };
            return (x64.mean(dims).mean().item<double>(), x64.std(dims, unbiased: true).mean().item<double>());
        }
        var (bm, bs) = Direct(cat(baseParts, 0));
        var (rm, rs) = Direct(cat(residualParts, 0));
        Assert.Equal(8, s.Rows);
        Assert.Equal(bm, s.BaseMean, 12);
        Assert.Equal(bs, s.BaseStd, 12);
        Assert.Equal(rm, s.ResidualMean, 12);
        Assert.Equal(rs, s.ResidualStd, 12);
        Assert.Equal(s, AlignmentStatistics.FromMetadata(s.ToMetadata()));
    }

    [Fact]
    public void Stored_mode_without_statistics_fails_clearly()
    {
        using var svg = TinyEncoders.Svg(new SvgEncoderConfig { Residual = TinyEncoders.Residual, Alignment = ResidualAlignment.Stored });
        svg.eval();
        using var rgb = TinyEncoders.Images(1, 32, 32, 1);
        var e = Assert.Throws<InvalidOperationException>(() => svg.Encode(rgb));
        Assert.Contains("EstimateAlignment", e.Message);
    }

    [Fact]
    public void Mask_token_replaces_whole_samples_in_training_only()
    {
        using var svg = TinyEncoders.Svg(new SvgEncoderConfig
        {
            Residual = TinyEncoders.Residual, MaskRatio = 1.0, Alignment = ResidualAlignment.None,
        });
        using var _ = no_grad();
        using var rgb = TinyEncoders.Images(2, 32, 32, 2);
        var maskToken = svg.state_dict()["mask_token"];                  // [1, 8, 1]
        svg.train();
        using var zTrain = svg.Encode(rgb);
        Assert.Equal(0, MaxAbsDiff(zTrain[.., 32..], maskToken.view(1, 8, 1, 1).expand(2, 8, 2, 2)));
        svg.eval();
        using var zEval = svg.Encode(rgb);
        var (_, hVit, _, _) = svg.EncodeParts(rgb);
        Assert.Equal(0, MaxAbsDiff(zEval[.., 32..], hVit.view(2, 8, 2, 2)));
    }

    [Fact]
    public void The_base_stays_frozen_in_training()
    {
        using var svg = TinyEncoders.Svg(new SvgEncoderConfig { Residual = TinyEncoders.Residual, MaskRatio = -1 });
        svg.train();
        Assert.False(svg.BaseEncoder.Module.training);
        Assert.True(svg.ResidualEncoder.training);
        using var rgb = TinyEncoders.Images(2, 32, 32, 3);
        using var z = svg.Encode(rgb);
        z.square().sum().backward();
        Assert.All(svg.BaseEncoder.Module.parameters(), p => Assert.True(p.grad is null));
        Assert.Contains(svg.ResidualEncoder.parameters(), p => p.grad is not null && p.grad.abs().sum().item<float>() > 0);

        using var following = TinyEncoders.Svg(new SvgEncoderConfig { Residual = TinyEncoders.Residual, BaseEncoderFollowsTrainMode = true });
        following.train();
        Assert.True(following.BaseEncoder.Module.training);
    }

    [Fact]
    public void Mismatched_grids_fail_clearly()
    {
        using var svg = TinyEncoders.Svg(new SvgEncoderConfig { Residual = TinyEncoders.Residual with { PatchSize = 8 } });
        svg.eval();
        using var rgb = TinyEncoders.Images(1, 32, 32, 1);
        Assert.Throws<InvalidOperationException>(() => svg.Encode(rgb));
    }
}
