using Svg.ML.Checkpoints;
using Svg.ML.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Training;

public class LpipsTests
{
    /// <summary>The state-dict layout of the lpips package's LPIPS(net='vgg') (minus its duplicate lins.* aliases),
    /// written out by hand from torchvision's vgg16 "D" configuration and lpips/pretrained_networks.py.</summary>
    static Dictionary<string, long[]> ReferenceLayout()
    {
        var layout = new Dictionary<string, long[]>
        {
            ["scaling_layer.shift"] = [1, 3, 1, 1],
            ["scaling_layer.scale"] = [1, 3, 1, 1],
        };
        void Conv(int slice, int index, long cin, long cout)
        {
            layout[$"net.slice{slice}.{index}.weight"] = [cout, cin, 3, 3];
            layout[$"net.slice{slice}.{index}.bias"] = [cout];
        }
        Conv(1, 0, 3, 64); Conv(1, 2, 64, 64);
        Conv(2, 5, 64, 128); Conv(2, 7, 128, 128);
        Conv(3, 10, 128, 256); Conv(3, 12, 256, 256); Conv(3, 14, 256, 256);
        Conv(4, 17, 256, 512); Conv(4, 19, 512, 512); Conv(4, 21, 512, 512);
        Conv(5, 24, 512, 512); Conv(5, 26, 512, 512); Conv(5, 28, 512, 512);
        long[] chns = [64, 128, 256, 512, 512];
        for (int k = 0; k < 5; k++) layout[$"lin{k}.model.1.weight"] = [1, chns[k], 1, 1];
        return layout;
    }

    [Fact]
    public void Keys_AndShapes_MatchTheLpipsPackage()
    {
        using var lpips = new Lpips();
        var actual = lpips.state_dict();
        var expected = ReferenceLayout();
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (k, shape) in expected) Assert.Equal(shape, actual[k].shape);
        Assert.Equal(new[] { -.030f, -.088f, -.188f }, actual["scaling_layer.shift"].data<float>().ToArray());
        Assert.Equal(new[] { .458f, .448f, .450f }, actual["scaling_layer.scale"].data<float>().ToArray());
        Assert.All(lpips.parameters(), p => Assert.False(p.requires_grad));
    }

    [Fact]
    public void MissingWeightFiles_GiveAClearError()
    {
        using var dir = new TempDirectory();
        var e = Assert.Throws<FileNotFoundException>(() => Lpips.Load(dir.File("vgg.pth"), dir.File("vgg16.pth")));
        Assert.Contains("lpips", e.Message);
        Assert.Contains("not bundled", e.Message);

        // A linear-head file alone (no net.* keys) is not enough either.
        var lin = ReferenceLayout().Where(kv => kv.Key.StartsWith("lin")).ToDictionary(kv => kv.Key, kv => rand(kv.Value));
        SafeTensors.Save(dir.File("lin.safetensors"), lin);
        var e2 = Assert.Throws<FileNotFoundException>(() => Lpips.Load(dir.File("lin.safetensors")));
        Assert.Contains("VGG16", e2.Message);
    }

    [Fact]
    public void Load_MapsTorchvisionVgg16AndLinearHeads()
    {
        using var dir = new TempDirectory();
        using var scope = NewDisposeScope();
        var g = new Generator(7);
        // A torchvision-style VGG16 file: features.{i}.weight|bias plus a classifier that must be ignored.
        var vgg = new Dictionary<string, Tensor>();
        foreach (var (k, shape) in ReferenceLayout().Where(kv => kv.Key.StartsWith("net.")))
        {
            var parts = k.Split('.');   // net, sliceS, index, weight|bias
            vgg[$"features.{parts[2]}.{parts[3]}"] = randn(shape, generator: g);
        }
        vgg["classifier.0.weight"] = randn(4, 4, generator: g);
        SafeTensors.Save(dir.File("vgg16.safetensors"), vgg);
        // The lpips package's head file uses lin{k}.model.1.weight; also accept the lins.{k} aliases.
        var lin = new Dictionary<string, Tensor>();
        long[] chns = [64, 128, 256, 512, 512];
        for (int k = 0; k < 5; k++) lin[k % 2 == 0 ? $"lin{k}.model.1.weight" : $"lins.{k}.model.1.weight"] = rand(new long[] { 1, chns[k], 1, 1 }, generator: g);
        SafeTensors.Save(dir.File("vgg.safetensors"), lin);

        using var lpips = Lpips.Load(dir.File("vgg.safetensors"), dir.File("vgg16.safetensors"));
        var sd = lpips.state_dict();
        Assert.True(TrainingAssert.BitwiseEqual(vgg["features.0.weight"], sd["net.slice1.0.weight"]));
        Assert.True(TrainingAssert.BitwiseEqual(vgg["features.7.bias"], sd["net.slice2.7.bias"]));
        Assert.True(TrainingAssert.BitwiseEqual(vgg["features.28.weight"], sd["net.slice5.28.weight"]));
        Assert.True(TrainingAssert.BitwiseEqual(lin["lins.3.model.1.weight"], sd["lin3.model.1.weight"]));
        Assert.True(TrainingAssert.BitwiseEqual(lin["lin4.model.1.weight"], sd["lin4.model.1.weight"]));
        Assert.False(lpips.training);

        // Distance properties: zero on identical images, symmetric, positive with non-negative heads, [B, 1, 1, 1].
        var x = rand(new long[] { 2, 3, 32, 32 }, generator: g) * 2 - 1;
        var y = rand(new long[] { 2, 3, 32, 32 }, generator: g) * 2 - 1;
        Assert.Equal(new long[] { 2, 1, 1, 1 }, lpips.call(x, y).shape);
        Assert.Equal(0f, lpips.call(x, x).abs().max().item<float>());
        Assert.True((lpips.call(x, y) - lpips.call(y, x)).abs().max().item<float>() < 1e-6);
        Assert.True(lpips.call(x, y).min().item<float>() > 0);
    }

    [Fact]
    public void NormalizeChannels_GivesUnitNormsOverChannels()
    {
        using var scope = NewDisposeScope();
        var x = randn(2, 5, 3, 3);
        var n = Lpips.NormalizeChannels(x).pow(2).sum([1]).sqrt();
        Assert.True((n - 1).abs().max().item<float>() < 1e-5);
    }
}
