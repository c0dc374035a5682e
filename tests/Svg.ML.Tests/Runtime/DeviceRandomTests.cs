using Svg.ML.Runtime;
using Svg.ML.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Runtime;

/// <summary>Randomness on any device: draws are made on the CPU from CPU generators and then moved (issue 9).</summary>
public class DeviceRandomTests
{
    static long[] StateBytes(Generator g)
    {
        using var s = g.get_state();
        return s.to(ScalarType.Int64).data<long>().ToArray();
    }

    [Fact]
    public void NoiseGenerator_IsAlwaysACpuGenerator()
    {
        TorchRuntime.EnsureInitialized();
        using var g = TrainingRandom.NoiseGenerator(7);
        Assert.Equal(DeviceType.CPU, g.device.type);
    }

    [Fact]
    public void OnTheCpu_DrawsAreExactlyTorchsOwn()
    {
        TorchRuntime.EnsureInitialized();
        using var a = new Generator(11);
        using var b = new Generator(11);
        using var mine = DeviceRandom.Randn([3, 5], a, CPU);
        using var theirs = torch.randn([3, 5], generator: b);
        Assert.Equal(theirs.data<float>().ToArray(), mine.data<float>().ToArray());   // bitwise
        using var u1 = DeviceRandom.Rand([4], a, CPU);
        using var u2 = torch.rand(4, generator: b);
        Assert.Equal(u2.data<float>().ToArray(), u1.data<float>().ToArray());
        using var i1 = DeviceRandom.RandInt(10, [6], a, CPU);
        using var i2 = torch.randint(10, [6], generator: b);
        Assert.Equal(i2.data<long>().ToArray(), i1.data<long>().ToArray());
        using var f1 = DeviceRandom.Uniform([2], -0.5, 0.5, a, CPU);
        using var f2 = torch.empty(2).uniform_(-0.5, 0.5, generator: b);
        Assert.Equal(f2.data<float>().ToArray(), f1.data<float>().ToArray());
    }

    /// <summary>
    /// A draw for another device (here libtorch's data-less "meta" device, the only non-CPU device of a CPU-only build)
    /// consumes the CPU generator exactly as the same draw for the CPU does, and lands on that device: the numbers a
    /// CUDA run gets are the CPU's. (A device generator would have failed here, as it does on CUDA.)
    /// </summary>
    [Fact]
    public void DrawForAnotherDevice_UsesTheCpuStream_AndLandsOnThatDevice()
    {
        TorchRuntime.EnsureInitialized();
        var meta = new Device(DeviceType.META);
        using var forMeta = new Generator(5);
        using var forCpu = new Generator(5);
        using var onMeta = DeviceRandom.Randn([2, 16, 8], forMeta, meta);
        using var onCpu = DeviceRandom.Randn([2, 16, 8], forCpu, CPU);
        Assert.Equal(DeviceType.META, onMeta.device.type);
        Assert.Equal(StateBytes(forCpu), StateBytes(forMeta));
        using var next1 = DeviceRandom.Rand([2], forMeta, CPU);
        using var next2 = DeviceRandom.Rand([2], forCpu, CPU);
        Assert.Equal(next2.data<float>().ToArray(), next1.data<float>().ToArray());
    }

    /// <summary>The state saved in a checkpoint (<c>rng.noise</c>) restores the stream exactly.</summary>
    [Fact]
    public void SavedNoiseState_RoundTrips()
    {
        TorchRuntime.EnsureInitialized();
        using var g = TrainingRandom.NoiseGenerator(42);
        using (DeviceRandom.Randn([10], g, CPU)) { }
        using var saved = TrainingRandom.GetState(g);
        using var first = DeviceRandom.Randn([32], g, CPU);
        using var other = TrainingRandom.NoiseGenerator(43);
        TrainingRandom.SetState(other, saved);
        using var again = DeviceRandom.Randn([32], other, CPU);
        Assert.Equal(first.data<float>().ToArray(), again.data<float>().ToArray());
    }
}
