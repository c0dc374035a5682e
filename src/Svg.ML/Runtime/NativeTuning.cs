using System.Runtime.InteropServices;

namespace Svg.ML.Runtime;

/// <summary>
/// Opt-in process settings for libtorch on small, possibly shared CPU machines; none changes a result. Svg.ML never
/// applies them by itself (they affect the whole process); the samples and benchmarks call both at start-up. Measured on
/// the 2-core development machine (shared with other jobs):
/// <list type="bullet">
/// <item><see cref="PassiveOpenMpThreads"/>: OpenMP threads sleep instead of spinning between parallel regions. With
/// both cores busy elsewhere, spinning threads made a 2-thread training step 5× slower than a 1-thread one; passive
/// waiting made 2 threads faster than 1 again. Must run before libtorch loads.</item>
/// <item><see cref="KeepFreedMemory"/>: glibc keeps freed blocks instead of returning them to the kernel (mallopt),
/// so the megabyte-sized buffers libtorch allocates at every step do not fault in fresh pages each time: 40 % less
/// CPU time per stage-1 step, 10 % per stage-2 step.</item>
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
}
