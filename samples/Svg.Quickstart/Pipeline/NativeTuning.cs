using System.Runtime.InteropServices;

namespace Svg.Quickstart;

/// <summary>
/// Process settings for libtorch on small, possibly shared CPU machines; none changes a result. Measured on the
/// 2-core development machine (shared with other jobs):
/// <list type="bullet">
/// <item><see cref="PassiveOpenMpThreads"/>: OpenMP threads sleep instead of spinning between parallel regions. With
/// both cores busy elsewhere, spinning threads made a 2-thread training step 5× slower than a 1-thread one; passive
/// waiting made 2 threads faster than 1 again. Must run before libtorch loads.</item>
/// <item><see cref="KeepFreedMemory"/>: glibc keeps freed blocks instead of returning them to the kernel (mallopt),
/// so the megabyte-sized buffers libtorch allocates at every step do not fault in fresh pages each time: 40 % less
/// CPU time per stage-1 step, 10 % per stage-2 step.</item>
/// <item><see cref="DisableNnpack"/>: where oneDNN is off (Svg.ML's OneDnnConvolutionGuard switches it off on CPUs
/// whose oneDNN convolutions are wrong), libtorch tries NNPACK for every convolution of a batch of 16 or more and, on
/// CPUs NNPACK does not support, prints "Could not initialize NNPACK! Reason: Unsupported hardware." each time
/// before using the same fallback kernels. Switching NNPACK off keeps the output readable.</item>
/// </list>
/// </summary>
public static class NativeTuning
{
    [DllImport("libc", EntryPoint = "setenv")]
    static extern int SetEnv(string name, string value, int overwrite);

    [DllImport("libc", EntryPoint = "mallopt")]
    static extern int Mallopt(int parameter, int value);

    const int M_TRIM_THRESHOLD = -1, M_TOP_PAD = -2, M_MMAP_THRESHOLD = -3;

    /// <summary>Sets <c>OMP_WAIT_POLICY=PASSIVE</c> in the native environment unless the user set it; effective only
    /// before libtorch (and its OpenMP runtime) is loaded. .NET's own environment API does not reach native code on Unix.</summary>
    public static bool PassiveOpenMpThreads()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return false;
        try { return SetEnv("OMP_WAIT_POLICY", "PASSIVE", 0) == 0; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }

    /// <summary>Raises glibc's mmap and trim thresholds (mallopt); false when not applied (not glibc).</summary>
    public static bool KeepFreedMemory()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            bool ok = Mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;   // glibc's maximum on 64-bit
            ok &= Mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
            ok &= Mallopt(M_TOP_PAD, 256 << 20) == 1;
            return ok;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }

    const string GlobalContextSymbol = "_ZN2at13globalContextEv";                 // at::globalContext()
    const string SetNnpackSymbol = "_ZN2at7Context20setUserEnabledNNPACKEb";      // at::Context::setUserEnabledNNPACK(bool)

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate IntPtr GlobalContextFn();
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate void SetFlagFn(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    /// <summary>Disables NNPACK (<c>at::globalContext().setUserEnabledNNPACK(false)</c>); call once libtorch is loaded.</summary>
    public static bool DisableNnpack()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return false;
        string lib = OperatingSystem.IsMacOS() ? "libtorch_cpu.dylib" : "libtorch_cpu.so";
        if (!NativeLibrary.TryLoad(lib, out IntPtr handle)) return false;
        if (!NativeLibrary.TryGetExport(handle, GlobalContextSymbol, out IntPtr getContext) ||
            !NativeLibrary.TryGetExport(handle, SetNnpackSymbol, out IntPtr setNnpack))
            return false;
        IntPtr context = Marshal.GetDelegateForFunctionPointer<GlobalContextFn>(getContext)();
        Marshal.GetDelegateForFunctionPointer<SetFlagFn>(setNnpack)(context, false);
        return true;
    }
}
