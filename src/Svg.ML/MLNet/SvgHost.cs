using Microsoft.ML;
using Microsoft.ML.Runtime;
using Svg.ML.Runtime;
using static TorchSharp.torch;

namespace Svg.ML.MLNet;

/// <summary>What Svg.ML's ML.NET components take from an <see cref="MLContext"/>: device, seed, log.</summary>
internal static class SvgHost
{
    /// <summary>
    /// CUDA device <see cref="MLContext.GpuDeviceId"/> (the index itself) when set and available; otherwise CPU if
    /// <see cref="MLContext.FallbackToCpu"/>, otherwise an error. On CUDA, TF32 is set as
    /// <see cref="MathSettings.AllowTf32"/> says (default on).
    /// </summary>
    public static Device ResolveDevice(MLContext ml)
    {
        var device = TorchRuntime.ResolveDevice(ml.GpuDeviceId, ml.FallbackToCpu);
        MathSettings.ConfigureTf32(device);
        return device;
    }

    /// <summary>
    /// <paramref name="explicitSeed"/> if given, else a draw from the context's random source: deterministic when the
    /// MLContext was created with a seed.
    /// </summary>
    public static int Seed(MLContext ml, int? explicitSeed, string component) =>
        explicitSeed ?? ((IHostEnvironment)ml).Register(component).Rand.Next();

    public static void Info(MLContext ml, string component, string message)
    {
        var host = ((IHostEnvironment)ml).Register(component);
        using var ch = host.Start(component);
        ch.Info(MessageSensitivity.None, message);
    }

    public static void Warning(MLContext ml, string component, string message)
    {
        var host = ((IHostEnvironment)ml).Register(component);
        using var ch = host.Start(component);
        ch.Warning(MessageSensitivity.None, message);
    }

    /// <summary>Default rows per forward pass: small on CPU (memory, cache), larger on GPU.</summary>
    public static int DefaultBatchSize(Device device) => device.type == TorchSharp.DeviceType.CUDA ? 64 : 16;
}
