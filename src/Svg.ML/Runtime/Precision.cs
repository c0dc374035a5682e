using static TorchSharp.torch;

namespace Svg.ML.Runtime;

/// <summary>
/// Floating-point precision of a model's compute. <see cref="Fp32"/> everywhere is the reference. <see cref="Bf16"/>:
/// matmuls, attention and convolutions in bfloat16 (8 mantissa bits, about 4e-3 relative per operation) with float32
/// accumulation inside libtorch's kernels (layer-norm and softmax statistics included); the diffusion time embedding,
/// the ODE state, the loss and — in training — the master weights and the optimiser state stay float32.
/// </summary>
public enum Precision
{
    /// <summary>float32 (on CUDA, matmuls use TF32 tensor cores unless <see cref="MathSettings.AllowTf32"/> is off).</summary>
    Fp32,
    /// <summary>bfloat16 compute, float32 where it matters (see <see cref="Precision"/>).</summary>
    Bf16,
}

/// <summary>Process-wide math settings of libtorch, and the dtype of a <see cref="Precision"/>.</summary>
public static class MathSettings
{
    /// <summary>
    /// Whether float32 matmuls and convolutions on CUDA may use TF32 tensor cores (10 mantissa bits in the products,
    /// float32 accumulation: the official DiT/SVG training setting, ~3–8× faster on Ampere and later). Default true;
    /// set false before resolving a CUDA device for full float32 (e.g. bitwise comparisons with the CPU). No effect on
    /// the CPU. Applied by <see cref="ConfigureTf32"/> whenever Svg.ML resolves a CUDA device.
    /// </summary>
    public static bool AllowTf32 { get; set; } = true;

    /// <summary>
    /// Sets libtorch's TF32 switches (<c>torch.backends.cuda.matmul.allow_tf32</c> and
    /// <c>torch.backends.cudnn.allow_tf32</c>) to <paramref name="allow"/> (default <see cref="AllowTf32"/>) when
    /// <paramref name="device"/> is a CUDA device; on other devices it does nothing. Returns whether it set them.
    /// </summary>
    public static bool ConfigureTf32(Device device, bool? allow = null)
    {
        if (device.type != TorchSharp.DeviceType.CUDA) return false;
        bool on = allow ?? AllowTf32;
        backends.cuda.matmul.allow_tf32 = on;
        backends.cudnn.allow_tf32 = on;
        return true;
    }

    /// <summary>Whether both TF32 switches are on now.</summary>
    public static bool Tf32Enabled => backends.cuda.matmul.allow_tf32 && backends.cudnn.allow_tf32;

    /// <summary>The compute dtype of <paramref name="precision"/>.</summary>
    public static ScalarType ComputeType(this Precision precision) => precision switch
    {
        Precision.Fp32 => ScalarType.Float32,
        Precision.Bf16 => ScalarType.BFloat16,
        _ => throw new ArgumentOutOfRangeException(nameof(precision), precision, "Unknown precision."),
    };
}
