using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Runtime;

/// <summary>
/// Process-wide TorchSharp set-up: the native-library fix (see <see cref="GlibcxxWeakVersionPatch"/>), device choice
/// and seeding. Every public entry point of Svg.ML calls <see cref="EnsureInitialized"/>; the module initializer
/// applies the native fix as soon as the Svg.ML assembly loads, before TorchSharp's first native call.
/// </summary>
public static class TorchRuntime
{
    static readonly object Gate = new();
    static bool _nativeReady, _torchReady;

    /// <summary>What the native fix did in this process (for diagnostics): one line per examined file.</summary>
    public static IReadOnlyList<string> NativeFixLog => _log;
    static readonly List<string> _log = new();

#pragma warning disable CA2255 // a library module initializer is intended here: it must run before TorchSharp loads
    [ModuleInitializer]
    internal static void OnAssemblyLoad() => EnsureNativeLibraryLoadable();
#pragma warning restore CA2255

    /// <summary>Applies the native fix where needed; idempotent and cheap after the first call.</summary>
    public static void EnsureNativeLibraryLoadable()
    {
        lock (Gate)
        {
            if (_nativeReady) return;
            _nativeReady = true;
            try
            {
                if (!OperatingSystem.IsLinux()) { _log.Add("not Linux: nothing to do"); return; }
                if (GlibcxxWeakVersionPatch.SystemLibstdcxxHasVersion())
                {
                    _log.Add($"system libstdc++ defines {GlibcxxWeakVersionPatch.MissingVersion}: nothing to do");
                    return;
                }
                foreach (string file in CandidateFiles())
                {
                    if (IsInPackageCache(file)) { _log.Add($"{file}: in the NuGet cache, left alone"); continue; }
                    bool changed = GlibcxxWeakVersionPatch.PatchFile(file);
                    _log.Add($"{file}: {(changed ? "patched" : "already weak")}");
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                _log.Add("native fix failed: " + e.Message);
            }
        }
    }

    /// <summary>Applies the native fix and initialises TorchSharp (CPU backend); throws a clear error if it cannot.</summary>
    public static void EnsureInitialized()
    {
        EnsureNativeLibraryLoadable();
        if (_torchReady) return;
        lock (Gate)
        {
            if (_torchReady) return;
            try { InitializeDeviceType(DeviceType.CPU); }
            catch (Exception e)
            {
                throw new InvalidOperationException(
                    "TorchSharp could not load its native library. Reference a backend package (TorchSharp-cpu, or a CUDA " +
                    "package) from the application. Native fix log: " + string.Join("; ", _log), e);
            }
            OneDnnConvolutionGuard.Apply();   // disables oneDNN where its float32 convolutions are wrong
            _torchReady = true;
        }
    }

    static IEnumerable<string> CandidateFiles()
    {
        var dirs = new List<string> { AppContext.BaseDirectory };
        string? torchDir = Path.GetDirectoryName(typeof(torch).Assembly.Location);
        if (!string.IsNullOrEmpty(torchDir)) dirs.Add(torchDir);
        if (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") is string search)
            dirs.AddRange(search.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries));
        string rid = RuntimeInformation.RuntimeIdentifier.StartsWith("linux-arm64") || RuntimeInformation.OSArchitecture == Architecture.Arm64
            ? "linux-arm64" : "linux-x64";
        foreach (var d in dirs.ToArray())
        {
            dirs.Add(Path.Combine(d, "runtimes", rid, "native"));
            dirs.Add(Path.Combine(d, "cpu"));   // TorchSharp's own consolidation folders
            dirs.Add(Path.Combine(d, "cuda"));
        }
        return dirs.Select(d => Path.GetFullPath(Path.Combine(d, GlibcxxWeakVersionPatch.LibraryFileName)))
                   .Distinct().Where(File.Exists);
    }

    /// <summary>True for files inside a NuGet package folder (the global packages cache or a fallback folder).</summary>
    static bool IsInPackageCache(string file)
    {
        var dir = new DirectoryInfo(Path.GetDirectoryName(file)!);
        for (int up = 0; dir is not null && up < 6; up++, dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, ".nupkg.metadata")) || dir.GetFiles("*.nuspec").Length > 0) return true;
        return false;
    }

    /// <summary>
    /// The device for ML.NET-facing components: CUDA device <paramref name="gpuDeviceId"/> when given and available,
    /// otherwise CPU if <paramref name="fallbackToCpu"/>, otherwise an error naming the problem.
    /// </summary>
    public static Device ResolveDevice(int? gpuDeviceId, bool fallbackToCpu)
    {
        EnsureInitialized();
        if (gpuDeviceId is null) return CPU;
        if (gpuDeviceId < 0) throw new ArgumentOutOfRangeException(nameof(gpuDeviceId), gpuDeviceId, "GPU device id must be >= 0.");
        bool available;
        try { InitializeDeviceType(DeviceType.CUDA); available = cuda.is_available() && gpuDeviceId < cuda.device_count(); }
        catch (Exception) { available = false; }
        if (available) return new Device(DeviceType.CUDA, gpuDeviceId.Value);
        if (fallbackToCpu) return CPU;
        throw new InvalidOperationException(
            $"GPU device {gpuDeviceId} was requested (MLContext.GpuDeviceId) but CUDA is not available to TorchSharp " +
            "(reference a TorchSharp CUDA backend package instead of TorchSharp-cpu), and MLContext.FallbackToCpu is false.");
    }

    /// <summary>Parses "cpu", "cuda", "cuda:1" (case-insensitive).</summary>
    public static Device ParseDevice(string text)
    {
        string t = text.Trim().ToLowerInvariant();
        if (t == "cpu") return CPU;
        if (t == "cuda" || t == "gpu") return ResolveDevice(0, fallbackToCpu: false);
        if (t.StartsWith("cuda:") && int.TryParse(t[5..], out int id)) return ResolveDevice(id, fallbackToCpu: false);
        throw new ArgumentException($"Unknown device '{text}': use cpu, cuda or cuda:N.", nameof(text));
    }
}
