using Svg.ML.Checkpoints;
using Svg.ML.Encoders.DinoV3;
using Svg.ML.Runtime;
using Svg.ML.Tests.Parity;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Encoders;

public class DinoV3Tests
{
    public DinoV3Tests() => TorchRuntime.EnsureInitialized();

    static double MaxAbsDiff(Tensor a, Tensor b) => (a.to(float64) - b.to(float64)).abs().max().item<double>();

    [Fact]
    public void Default_periods_are_the_official_fp32_values_bit_for_bit()
    {
        // dinov3_tiny stores the periods the official _init_weights computes in fp32 (head_dim 64, base 100).
        var golden = SafeTensors.Load(Path.Combine(RepoPaths.TestProjectDir, "Golden", "dinov3_tiny.safetensors")).Tensors["w.rope_embed.periods"];
        using var periods = RopePositionEmbedding.DefaultPeriods(DinoV3Config.ViTSPlus16);
        Assert.Equal(golden.data<float>().ToArray(), periods.data<float>().ToArray());
        Assert.Equal(ScalarType.Float32, periods.dtype);
    }

    [Fact]
    public void Bias_mask_starts_with_the_official_pattern()
    {
        using var mask = LinearKMaskedBias.InitialMask(12);
        Assert.Equal(new float[] { 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1 }, mask.data<float>().ToArray());
        using var model = new DinoVisionTransformer(TinyEncoders.Dino);
        Assert.Equal(new float[] { 1, 0, 1 }, model.state_dict()["blocks.1.attn.qkv.bias_mask"].view(3, -1).mean(new long[] { 1 }).data<float>().ToArray());
    }

    [Fact]
    public void Non_square_inputs_give_row_major_grids_of_the_right_shape()
    {
        using var model = TinyEncoders.Randomized(new DinoVisionTransformer(TinyEncoders.Dino), 3);
        model.eval();
        using var _ = no_grad();
        using var x = TinyEncoders.Images(2, 48, 80, 4);
        using var f = model.ForwardFeatures(x);
        Assert.Equal(new long[] { 2, 15, 32 }, f.XNormPatchTokens.shape);
        Assert.Equal(new long[] { 2, 32 }, f.XNormClsToken.shape);
        Assert.Equal(new long[] { 2, 4, 32 }, f.XStorageTokens.shape);
        Assert.Equal(new long[] { 2, 20, 32 }, f.XPrenorm.shape);
        Assert.Equal((3, 5), (f.GridHeight, f.GridWidth));

        using var grid = model.EncodeGrid(x);
        Assert.Equal(new long[] { 2, 32, 3, 5 }, grid.shape);
        // grid[b, :, i, j] is patch token i·w + j
        Assert.Equal(0, MaxAbsDiff(grid[0, .., 1, 3], f.XNormPatchTokens[0, 1 * 5 + 3]));

        var (sin, cos) = model.RopeEmbed.forward(3, 5);
        Assert.Equal(new long[] { 15, 16 }, sin.shape);
        Assert.True(MaxAbsDiff(sin * sin + cos * cos, ones_like(sin)) < 1e-6);
    }

    [Fact]
    public void Sizes_that_are_not_multiples_of_the_patch_are_floored_like_the_official_code()
    {
        using var model = TinyEncoders.Randomized(new DinoVisionTransformer(TinyEncoders.Dino), 5);
        model.eval();
        using var _ = no_grad();
        using var x = TinyEncoders.Images(1, 50, 70, 6);
        using var grid = model.EncodeGrid(x);
        Assert.Equal(new long[] { 1, 32, 3, 4 }, grid.shape);
        // The remainder rows/columns are ignored: same features as the top-left 48×64 crop.
        using var crop = model.EncodeGrid(x[.., .., ..48, ..64]);
        Assert.Equal(0, MaxAbsDiff(grid, crop));
    }

    [Fact]
    public void Intermediate_layers_last_normed_equals_forward_features()
    {
        using var model = TinyEncoders.Randomized(new DinoVisionTransformer(TinyEncoders.Dino), 7);
        model.eval();
        using var _ = no_grad();
        using var x = TinyEncoders.Images(2, 32, 48, 8);
        using var f = model.ForwardFeatures(x);
        var last = model.GetIntermediateLayers(x, 1, reshape: false, norm: true);
        Assert.Single(last);
        Assert.Equal(0, MaxAbsDiff(last[0], f.XNormPatchTokens));

        var both = model.GetIntermediateLayers(x, 2, reshape: true, norm: true);
        var byIndex = model.GetIntermediateLayers(x, new[] { 0, 1 }, reshape: true, norm: true);
        Assert.Equal(new long[] { 2, 32, 2, 3 }, both[0].shape);
        Assert.Equal(0, MaxAbsDiff(both[0], byIndex[0]));
        Assert.Equal(0, MaxAbsDiff(both[1], f.PatchGrid()));
        Assert.True(MaxAbsDiff(both[0], both[1]) > 1e-3);

        var raw = model.GetIntermediateLayers(x, new[] { 1 }, norm: false);
        Assert.Equal(0, MaxAbsDiff(raw[0], f.XPrenorm[.., 5..]));

        Assert.Throws<ArgumentException>(() => model.GetIntermediateLayers(x, new[] { 2 }));
        Assert.Throws<ArgumentException>(() => model.GetIntermediateLayers(x, new[] { 1, 1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.GetIntermediateLayers(x, 3));
    }

    [Fact]
    public void Masked_patches_are_replaced_by_the_mask_token()
    {
        using var model = TinyEncoders.Randomized(new DinoVisionTransformer(TinyEncoders.Dino), 9);
        model.eval();
        using var _ = no_grad();
        using var a = TinyEncoders.Images(1, 32, 32, 10);
        using var b = TinyEncoders.Images(1, 32, 32, 11);
        using var none = zeros(1, 4, dtype: ScalarType.Bool);
        using var all = ones(1, 4, dtype: ScalarType.Bool);
        using var plain = model.ForwardFeatures(a);
        using var unmasked = model.ForwardFeatures(a, none);
        Assert.Equal(0, MaxAbsDiff(plain.XPrenorm, unmasked.XPrenorm));
        using var maskedA = model.ForwardFeatures(a, all);
        using var maskedB = model.ForwardFeatures(b, all);
        Assert.Equal(0, MaxAbsDiff(maskedA.XPrenorm, maskedB.XPrenorm));   // the image no longer matters
        Assert.True(MaxAbsDiff(plain.XPrenorm, maskedA.XPrenorm) > 1e-3);
    }

    [Fact]
    public void Rope_is_deterministic_in_eval_and_rescaled_in_training()
    {
        using var rope = new RopePositionEmbedding(TinyEncoders.Dino);
        rope.eval();
        var (s1, _) = rope.forward(4, 4);
        var (s2, _) = rope.forward(4, 4);
        Assert.Equal(0, MaxAbsDiff(s1, s2));
        rope.train();
        torch.manual_seed(1);
        var (t1, _) = rope.forward(4, 4);
        var (t2, _) = rope.forward(4, 4);
        Assert.True(MaxAbsDiff(t1, t2) > 1e-4);
    }

    [Fact]
    public void Config_validation_rejects_inconsistent_sizes()
    {
        Assert.Throws<ArgumentException>(() => new DinoVisionTransformer(TinyEncoders.Dino with { NumHeads = 3 }));
        Assert.Throws<ArgumentException>(() => new DinoVisionTransformer(TinyEncoders.Dino with { DropPathRate = 0.1 }));
        Assert.Throws<ArgumentException>(() => new DinoVisionTransformer(TinyEncoders.Dino with { RopeMinPeriod = 1, RopeMaxPeriod = 10 }));
        using var model = new DinoVisionTransformer(TinyEncoders.Dino);
        using var gray = zeros(1, 1, 32, 32);
        using var tooSmall = zeros(1, 3, 8, 32);
        Assert.Throws<ArgumentException>(() => model.ForwardFeatures(gray));
        Assert.Throws<ArgumentException>(() => model.ForwardFeatures(tooSmall));
    }

    [Fact]
    public void Min_max_period_parametrisation_is_log_spaced_between_the_bounds()
    {
        var config = TinyEncoders.Dino with { RopeBase = null, RopeMinPeriod = 0.5, RopeMaxPeriod = 8 };
        using var periods = RopePositionEmbedding.DefaultPeriods(config);   // head_dim 16 → 4 periods
        var expected = new[] { 0.0, 1 / 3.0, 2 / 3.0, 1.0 }.Select(e => 0.5 * Math.Pow(16, e)).ToArray();   // min · (max/min)^e
        var actual = periods.data<float>().ToArray();
        for (int i = 0; i < 4; i++) Assert.True(Math.Abs(actual[i] - expected[i]) < 1e-5 * expected[i], $"period {i}: {actual[i]} vs {expected[i]}");
    }

    [Fact]
    public void No_layerscale_means_no_gamma_keys()
    {
        using var model = new DinoVisionTransformer(TinyEncoders.Dino with { LayerScaleInit = null, NStorageTokens = 0 });
        var keys = model.state_dict().Keys.ToList();
        Assert.DoesNotContain(keys, k => k.Contains("ls1") || k.Contains("ls2"));
        Assert.DoesNotContain("storage_tokens", keys);
        using var x = TinyEncoders.Images(1, 32, 32, 12);
        using var f = model.ForwardFeatures(x);
        Assert.Equal(new long[] { 1, 0, 32 }, f.XStorageTokens.shape);
    }
}
