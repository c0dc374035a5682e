using Svg.ML.Data;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Data;

public class ImageTensorsTests
{
    [Fact]
    public void Resize_IsAntialiasedWhenShrinking()
    {
        // A one-pixel checkerboard halved: an antialiased filter averages it to 0.5; plain bilinear sampling would alias.
        using var scope = NewDisposeScope();
        var ii = arange(16).view(16, 1);
        var jj = arange(16).view(1, 16);
        var board = ((ii + jj) % 2).to(ScalarType.Float32).view(1, 1, 16, 16).expand(1, 3, 16, 16);
        var small = ImageTensors.Resize(board, 8, 8, ResizeMode.Stretch);
        Assert.Equal(new long[] { 1, 3, 8, 8 }, small.shape);
        Assert.True((small - 0.5f).abs().max().item<float>() < 0.05f);
        // Constant images stay constant, enlarged or shrunk.
        var grey = full(new long[] { 2, 3, 10, 14 }, 0.25f);
        Assert.True((ImageTensors.Resize(grey, 32, 32) - 0.25f).abs().max().item<float>() < 1e-6f);
        Assert.True((ImageTensors.Resize(grey, 4, 4) - 0.25f).abs().max().item<float>() < 1e-6f);
    }

    [Fact]
    public void CenterCrop_KeepsTheMiddle_Stretch_KeepsEverything()
    {
        using var scope = NewDisposeScope();
        // 4 rows × 8 columns; columns 0–1 and 6–7 are 1, the middle 0.
        var img = zeros(1, 1, 4, 8);
        img[.., .., .., TensorIndex.Slice(0, 2)] = tensor(1f);
        img[.., .., .., TensorIndex.Slice(6, 8)] = tensor(1f);
        var crop = ImageTensors.Resize(img, 4, 4, ResizeMode.CenterCrop);
        Assert.Equal(0f, crop.abs().max().item<float>());
        var stretch = ImageTensors.Resize(img, 4, 4, ResizeMode.Stretch);
        Assert.True(stretch.max().item<float>() > 0.4f);
    }

    [Fact]
    public void ToSquare_ScalesTheShorterSide_CropsTheCentre_RoundsTo8Bit()
    {
        using var scope = NewDisposeScope();
        // 8 rows × 32 columns: columns 0–3 and 28–31 are 1, the rest 0.4. CenterCrop to 4: scale ×½ to 4×16, keep
        // columns 6–9 (source columns 12–19, out of reach of the stripes); Stretch keeps the stripes.
        var img = full(new long[] { 1, 3, 8, 32 }, 0.4f);
        img[.., .., .., TensorIndex.Slice(0, 4)] = tensor(1f);
        img[.., .., .., TensorIndex.Slice(28, 32)] = tensor(1f);
        var crop = ImageTensors.ToSquare(img, 4, ResizeMode.CenterCrop);
        Assert.Equal(new long[] { 1, 3, 4, 4 }, crop.shape);
        Assert.True((crop - 102 / 255f).abs().max().item<float>() < 1e-6f, "centre crop: 0.4 rounded to 102/255");
        var stretch = ImageTensors.ToSquare(img, 4, ResizeMode.Stretch);
        Assert.Equal(new long[] { 1, 3, 4, 4 }, stretch.shape);
        Assert.True(stretch[.., .., .., 0].min().item<float>() > 0.55f, "stretch keeps the left stripe (background 0.4)");
        var levels = stretch * 255;
        Assert.True((levels - levels.round()).abs().max().item<float>() < 1e-4f, "resized values are 8-bit levels");
        // Already square and of the size: unchanged, not rounded.
        var exact = rand(2, 3, 4, 4);
        Assert.Equal(0f, (ImageTensors.ToSquare(exact, 4) - exact).abs().max().item<float>());
    }

    [Fact]
    public void Batches_Shuffled_VisitEveryImageOnce_Deterministically()
    {
        var pixels = arange(10, dtype: ScalarType.Byte).view(10, 1, 1, 1).expand(10, 1, 2, 2).contiguous();
        using var data = new LabeledImages(pixels, Enumerable.Range(0, 10).Select(i => (long)(i % 3)).ToArray(), new[] { "a", "b", "c" }, "test");
        long[] Order(long seed) => data.Batches(3, shuffle: true, seed: seed)
            .SelectMany(b => { var v = (b.Images[.., 0, 0, 0] * 255f).round().to(ScalarType.Int64).data<long>().ToArray(); b.Images.Dispose(); b.Labels.Dispose(); return v; })
            .ToArray();
        var o1 = Order(7);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (long)i), o1.Order());
        Assert.NotEqual(Enumerable.Range(0, 10).Select(i => (long)i), o1);
        Assert.Equal(o1, Order(7));
        // Labels travel with their images.
        foreach (var (x, y) in data.Batches(4, shuffle: true, seed: 3))
        {
            var ids = (x[.., 0, 0, 0] * 255f).round().to(ScalarType.Int64).data<long>().ToArray();
            Assert.Equal(ids.Select(i => i % 3), y.data<long>().ToArray());
            x.Dispose(); y.Dispose();
        }
    }
}
