using Svg.ML.Diffusion;
using Svg.ML.Runtime;
using Svg.ML.Tests.Parity;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Diffusion;

public class SvgDiTTests
{
    public SvgDiTTests() => TorchRuntime.EnsureInitialized();

    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && (a - b).abs().max().to(float64).item<double>() == 0;

    [Fact]
    public void Fresh_model_outputs_exactly_zero_and_has_the_official_zero_init()
    {
        using var _ = no_grad();
        torch.manual_seed(0);
        using var model = new SvgDiT(TinyModels.Config);
        model.eval();
        using var x = torch.randn(2, 16, 6);
        using var y = model.forward(x, torch.tensor(new[] { 0.2f, 0.9f }), torch.tensor(new long[] { 0, 3 }));
        Assert.Equal(new long[] { 2, 16, 12 }, y.shape);
        Assert.Equal(0.0, y.abs().max().item<float>());

        var sd = model.state_dict();
        foreach (var key in new[] { "blocks.0.adaLN_modulation.1.weight", "blocks.0.adaLN_modulation.1.bias",
                                    "final_layer.adaLN_modulation.1.weight", "final_layer.linear.weight", "final_layer.linear.bias",
                                    "ln1.bias", "blocks.0.attn.qkv.bias" })
            Assert.Equal(0.0, sd[key].abs().max().item<float>());
        Assert.InRange(sd["y_embedder.embedding_table.weight"].std().item<float>(), 0.015, 0.025);   // N(0, 0.02)
        Assert.InRange(sd["t_embedder.mlp.0.weight"].std().item<float>(), 0.015, 0.025);
        // xavier-uniform: bound √(6 / (fan_in + fan_out))
        double bound = Math.Sqrt(6.0 / (32 + 96));
        var qkv = sd["blocks.0.attn.qkv.weight"];
        Assert.True(qkv.abs().max().item<float>() <= bound && qkv.std().item<float>() > bound / 2.5);
        Assert.Equal(1.0, sd["blocks.0.attn.q_norm.weight"].min().item<float>());
        Assert.Equal(1.0, sd["blocks.0.attn.k_norm.weight"].max().item<float>());
        Assert.Equal(0.0, sd["blocks.0.attn.k_norm.bias"].abs().max().item<float>());
    }

    [Fact]
    public void Position_embedding_equals_the_official_values_for_the_16x16_grid()
    {
        // dit_tiny stores the official frozen pos_embed (hidden 128, 16×16) untouched by the golden randomisation.
        var golden = new GoldenCase(GoldenCase.Folder, "dit_tiny");
        var config = DitKind.FromOfficial(golden.Config["dit"]!.AsObject());
        using var model = new SvgDiT(config, device: torch.META);
        using var ours = SinCosPositionEmbedding.Create2D(config.HiddenSize, config.GridSize).unsqueeze(0);
        var official = golden.Weights["pos_embed"];
        Assert.Equal(official.shape, ours.shape);
        Assert.True((ours - official).abs().max().item<float>() <= 1e-7);
    }

    [Fact]
    public void Any_square_grid_works_with_its_own_position_embedding()
    {
        using var _ = no_grad();
        var config = TinyModels.Config with { GridSize = 8 };
        using var model = TinyModels.RandomDiT(config);
        Assert.Equal(new long[] { 1, 64, 32 }, model.PositionEmbedding.shape);
        using var x = torch.randn(3, 64, 6);
        using var y = model.forward(x, torch.rand(3), torch.tensor(new long[] { 0, 1, 2 }));
        Assert.Equal(new long[] { 3, 64, 12 }, y.shape);
        Assert.True(y.abs().max().item<float>() > 0);
        // token count must match the grid
        Assert.Throws<ArgumentException>(() => model.forward(torch.randn(1, 16, 6), torch.rand(1), torch.tensor(new long[] { 0 })));
    }

    [Fact]
    public void Position_embedding_layout_is_column_half_then_row_half_sin_then_cos()
    {
        using var pe = SinCosPositionEmbedding.Create2D(8, 3);     // D = 8: each axis gets 4 = [sin ω0, sin ω1, cos ω0, cos ω1]
        // token n = row·3 + col; ω = [1, 1/100]
        int row = 2, col = 1, n = row * 3 + col;
        float[] expected =
        [
            (float)Math.Sin(col), (float)Math.Sin(col / 100.0), (float)Math.Cos(col), (float)Math.Cos(col / 100.0),
            (float)Math.Sin(row), (float)Math.Sin(row / 100.0), (float)Math.Cos(row), (float)Math.Cos(row / 100.0),
        ];
        Assert.Equal(expected, pe[n].data<float>().ToArray());
    }

    [Fact]
    public void Timestep_embedding_is_cos_then_sin_of_unscaled_t()
    {
        using var emb = TimestepEmbedder.TimestepEmbedding(torch.tensor(new[] { 0f, 0.5f }), 8);
        Assert.Equal(new float[] { 1, 1, 1, 1, 0, 0, 0, 0 }, emb[0].data<float>().ToArray());
        // freqs_i = 10000^(-i/4): the first frequency is 1, so column 0 is cos(0.5) and column 4 is sin(0.5)
        Assert.Equal(MathF.Cos(0.5f), emb[1, 0].item<float>(), 6);
        Assert.Equal(MathF.Sin(0.5f), emb[1, 4].item<float>(), 6);
    }

    [Fact]
    public void Label_dropout_only_in_training_or_when_forced()
    {
        using var _ = no_grad();
        using var model = TinyModels.RandomDiT(TinyModels.Config with { ClassDropoutProb = 1.0 });
        var embedder = model.LabelEmbedder;
        using var labels = torch.tensor(new long[] { 0, 1, 2 });
        using var nulls = torch.full(3, 3L, dtype: int64);

        model.eval();
        using (var e = embedder.forward(labels)) using (var r = embedder.Embed(labels, false)) Assert.True(Same(e, r));
        using (var forced = embedder.TokenDrop(labels, torch.tensor(new long[] { 0, 1, 0 })))
            Assert.Equal(new long[] { 0, 3, 2 }, forced.data<long>().ToArray());

        model.train();      // p = 1: every label becomes the null class
        using (var dropped = embedder.TokenDrop(labels)) Assert.True(Same(dropped, nulls));
        using (var e = embedder.forward(labels)) using (var n = embedder.Embed(nulls, false)) Assert.True(Same(e, n));
        // a forced keep overrides the random draw in training too
        using var x = torch.randn(3, 16, 6);
        using var t = torch.rand(3);
        using var keep = torch.zeros(3, dtype: int64);
        using var trained = model.forward(x, t, labels, keep);
        model.eval();
        using var evaluated = model.forward(x, t, labels);
        Assert.True(Same(trained, evaluated));
    }

    [Fact]
    public void Presets_have_the_published_sizes()
    {
        Assert.Equal((12, 384, 6), (SvgDiTConfig.S.Depth, SvgDiTConfig.S.HiddenSize, SvgDiTConfig.S.NumHeads));
        Assert.Equal((12, 768, 12), (SvgDiTConfig.B.Depth, SvgDiTConfig.B.HiddenSize, SvgDiTConfig.B.NumHeads));
        Assert.Equal((24, 1024, 16), (SvgDiTConfig.L.Depth, SvgDiTConfig.L.HiddenSize, SvgDiTConfig.L.NumHeads));
        Assert.Equal((28, 1152, 16), (SvgDiTConfig.XL.Depth, SvgDiTConfig.XL.HiddenSize, SvgDiTConfig.XL.NumHeads));
        Assert.Equal((32, 1280, 20), (SvgDiTConfig.XXL.Depth, SvgDiTConfig.XXL.HiddenSize, SvgDiTConfig.XXL.NumHeads));
        Assert.All(new[] { SvgDiTConfig.S, SvgDiTConfig.B, SvgDiTConfig.L, SvgDiTConfig.XL, SvgDiTConfig.XXL },
            c => Assert.Equal((392, 1000, 256, 784), (c.InChannels, c.NumClasses, c.NumTokens, c.OutChannels)));
        Assert.Throws<ArgumentException>(() => new SvgDiT(TinyModels.Config with { PatchSize = 2 }, torch.META));
    }
}
