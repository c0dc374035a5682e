using Svg.ML.Encoders;
using Svg.ML.Runtime;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Encoders;

public class ResidualEncoderTests
{
    public ResidualEncoderTests() => TorchRuntime.EnsureInitialized();

    [Fact]
    public void Output_is_channels_by_patches_and_grid()
    {
        using var model = TinyEncoders.Randomized(new ResidualEncoder(TinyEncoders.Residual), 1);
        model.eval();
        using var _ = no_grad();
        using var x = TinyEncoders.Images(3, 32, 32, 2);
        using var h = model.forward(x);
        Assert.Equal(new long[] { 3, 8, 4 }, h.shape);
        using var grid = model.EncodeGrid(x);
        Assert.Equal(new long[] { 3, 8, 2, 2 }, grid.shape);
        Assert.Equal(0, (grid.flatten(2) - h).abs().max().item<float>());
    }

    [Fact]
    public void Only_the_configured_image_size_is_accepted()
    {
        using var model = new ResidualEncoder(TinyEncoders.Residual);
        using var x = TinyEncoders.Images(1, 48, 32, 3);
        var e = Assert.Throws<ArgumentException>(() => model.forward(x));
        Assert.Contains("32×32", e.Message);
        Assert.Throws<ArgumentException>(() => new ResidualEncoder(TinyEncoders.Residual with { ImageSize = 40 }));
    }

    [Fact]
    public void Dropout_acts_only_in_training()
    {
        using var model = TinyEncoders.Randomized(new ResidualEncoder(TinyEncoders.Residual), 4);
        using var _ = no_grad();
        using var x = TinyEncoders.Images(2, 32, 32, 5);
        model.eval();
        using var e1 = model.forward(x);
        using var e2 = model.forward(x);
        Assert.Equal(0, (e1 - e2).abs().max().item<float>());
        model.train();
        using var t1 = model.forward(x);
        Assert.True((e1 - t1).abs().max().item<float>() > 1e-4);
    }
}
