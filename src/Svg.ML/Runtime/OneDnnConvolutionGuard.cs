using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Runtime;

/// <summary>
/// Guards against wrong float32 convolutions from libtorch's oneDNN (MKLDNN) backend on CPUs where its JIT kernels
/// misbehave. Observed with TorchSharp-cpu 0.107 (libtorch 2.10, oneDNN 3.7.1) on an AMD EPYC VM with AVX-512:
/// a 3×3 convolution whose input channels are not a multiple of 16 (e.g. the SVG decoder's 392-channel
/// <c>conv_in</c>) is off by O(1), and the input gradient of one with few output channels (e.g. <c>conv_out</c>,
/// 3 channels) is wrong or NaN, in both the AVX-512 and AVX2 kernels.
/// <para>
/// <see cref="Apply"/> runs a tiny self-test (forward and input gradient against float64, which does not use
/// oneDNN); when it fails, oneDNN is switched off for ATen (<c>at::globalContext().setUserEnabledMkldnn(false)</c>),
/// so convolutions use ATen's own im2col + BLAS kernels. Healthy machines keep oneDNN. The environment variable
/// <c>SVGML_ONEDNN</c> = <c>on</c> / <c>off</c> overrides the test.
/// </para>
/// </summary>
public static class OneDnnConvolutionGuard
{
    /// <summary>What the guard found and did (for diagnostics).</summary>
    public static string Status { get; private set; } = "not run";

    /// <summary>Whether oneDNN was switched off by the guard.</summary>
    public static bool Disabled { get; private set; }

    const string GlobalContextSymbol = "_ZN2at13globalContextEv";                     // at::globalContext()
    const string SetMkldnnSymbol = "_ZN2at7Context20setUserEnabledMkldnnEb";           // at::Context::setUserEnabledMkldnn(bool)
    const string SetNnpackSymbol = "_ZN2at7Context20setUserEnabledNNPACKEb";           // at::Context::setUserEnabledNNPACK(bool)

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate IntPtr GlobalContextFn();
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate void SetFlagFn(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    /// <summary>Runs the self-test once (call after TorchSharp's CPU backend is initialised) and disables oneDNN if it fails.</summary>
    internal static void Apply()
    {
        try
        {
            // NNPACK is ATen's fallback when oneDNN is not used; on CPUs it does not support, every convolution that
            // probes it prints "Could not initialize NNPACK". Svg.ML never needs it: keep ATen from probing.
            SetContextFlag(SetNnpackSymbol, false, out _);
            string? mode = Environment.GetEnvironmentVariable("SVGML_ONEDNN")?.Trim().ToLowerInvariant();
            if (mode == "on") { Status = "SVGML_ONEDNN=on: oneDNN left enabled"; return; }
            if (mode != "off")
            {
                double error = SelfTestError();
                if (error <= 1e-3) { Status = $"oneDNN convolutions correct (self-test error {error:E1})"; return; }
                Status = $"oneDNN convolutions wrong on this CPU (self-test error {error:E1})";
            }
            else Status = "SVGML_ONEDNN=off";
            Disabled = SetContextFlag(SetMkldnnSymbol, false, out string how);
            Status += Disabled ? "; oneDNN disabled for ATen" : "; could not disable oneDNN: " + how;
        }
        catch (Exception e)
        {
            Status = "self-test failed: " + e.Message;
        }
    }

    /// <summary>
    /// Max error against float64 of two float32 3×3 convolutions: the output of one with 24 input channels, and the
    /// input gradient of one with 3 output channels (the two failure modes seen).
    /// </summary>
    static double SelfTestError()
    {
        using var scope = NewDisposeScope();
        using var grad = enable_grad();
        var gen = new Generator(1234);
        double worst = 0;
        foreach (var (inChannels, outChannels) in new[] { (24, 32), (32, 3) })
        {
            Tensor x = torch.randn([2, inChannels, 8, 8], generator: gen);
            Tensor w = torch.randn([outChannels, inChannels, 3, 3], generator: gen) / Math.Sqrt(9 * inChannels);
            Tensor g = torch.randn([2, outChannels, 8, 8], generator: gen);
            (Tensor Y, Tensor Dx) Run(ScalarType dtype)
            {
                Tensor xi = x.to(dtype).detach().requires_grad_(true);
                Tensor y = nn.functional.conv2d(xi, w.to(dtype), padding: [1, 1]);
                (y * g.to(dtype)).sum().backward();
                return (y.detach().to(float64), xi.grad!.to(float64));
            }
            var (y32, dx32) = Run(float32);
            var (y64, dx64) = Run(float64);
            double e = Math.Max((y32 - y64).abs().max().item<double>(), (dx32 - dx64).abs().max().item<double>());
            worst = double.IsNaN(e) ? double.PositiveInfinity : Math.Max(worst, e);
        }
        return worst;
    }

    /// <summary>Calls <c>at::globalContext().setUserEnabled…(value)</c> through the symbol exported by libtorch_cpu.</summary>
    static bool SetContextFlag(string setterSymbol, bool value, out string how)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) { how = "only supported on Linux and macOS"; return false; }
        string lib = OperatingSystem.IsMacOS() ? "libtorch_cpu.dylib" : "libtorch_cpu.so";
        if (!NativeLibrary.TryLoad(lib, out IntPtr handle)) { how = lib + " not loadable"; return false; }
        if (!NativeLibrary.TryGetExport(handle, GlobalContextSymbol, out IntPtr getContext) ||
            !NativeLibrary.TryGetExport(handle, setterSymbol, out IntPtr setter))
        {
            how = "at::Context symbols not exported";
            return false;
        }
        IntPtr context = Marshal.GetDelegateForFunctionPointer<GlobalContextFn>(getContext)();
        Marshal.GetDelegateForFunctionPointer<SetFlagFn>(setter)(context, value);
        how = "";
        return true;
    }
}
