using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Runtime;

/// <summary>
/// Random draws for tensors on any device. TorchSharp 0.107 only makes CPU generators (<c>THSGenerator_new</c> ignores
/// the device), and libtorch rejects a CPU generator for a CUDA draw, so every draw is made on the CPU — from the given
/// generator, or from the global CPU generator when none is given — and the result is moved to the device. What holds:
/// <list type="bullet">
/// <item>the same generator state gives the same draws on every device (the numbers are made on the CPU);</item>
/// <item>results are bitwise equal run to run on the same device, and equal within float tolerance across devices
///   (the arithmetic after the draw differs between CPU and GPU kernels);</item>
/// <item>on the CPU the draws are exactly those of <c>torch.randn(…, generator)</c> / <c>torch.rand</c>.</item>
/// </list>
/// Dropout inside modules (<c>nn.Dropout</c>) is the exception: libtorch draws it on the device from the device's
/// default generator (seeded by <c>torch.cuda.manual_seed</c> on CUDA).
/// </summary>
public static class DeviceRandom
{
    /// <summary>Standard normal draws of <paramref name="shape"/>, made on the CPU and moved to <paramref name="device"/>.</summary>
    public static Tensor Randn(long[] shape, Generator? generator, Device device, ScalarType dtype = ScalarType.Float32) =>
        ToDevice(torch.randn(shape, dtype: dtype, device: CPU, generator: generator), device);

    /// <summary>Uniform draws in [0, 1) of <paramref name="shape"/>, made on the CPU and moved to <paramref name="device"/>.</summary>
    public static Tensor Rand(long[] shape, Generator? generator, Device device, ScalarType dtype = ScalarType.Float32) =>
        ToDevice(torch.rand(shape, dtype: dtype, device: CPU, generator: generator), device);

    /// <summary>Uniform draws in [<paramref name="low"/>, <paramref name="high"/>) (libtorch's <c>uniform_</c>), made on
    /// the CPU and moved to <paramref name="device"/>.</summary>
    public static Tensor Uniform(long[] shape, double low, double high, Generator? generator, Device device,
                                 ScalarType dtype = ScalarType.Float32) =>
        ToDevice(torch.empty(shape, dtype: dtype, device: CPU).uniform_(low, high, generator: generator), device);

    /// <summary>Integers uniform in [0, <paramref name="high"/>), made on the CPU and moved to <paramref name="device"/>.</summary>
    public static Tensor RandInt(long high, long[] shape, Generator? generator, Device device) =>
        ToDevice(torch.randint(high, shape, dtype: ScalarType.Int64, device: CPU, generator: generator), device);

    static Tensor ToDevice(Tensor cpu, Device device)
    {
        if (device.type == DeviceType.CPU) return cpu;
        using (cpu) return cpu.to(device);
    }
}
