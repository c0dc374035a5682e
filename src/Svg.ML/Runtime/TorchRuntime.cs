using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Runtime;

/// <summary>
/// Process-wide TorchSharp set-up: the native-library fix (see <see cref="GlibcxxWeakVersionPatch"/>), libtorch from
/// outside the app (<see cref="UseLibTorch"/>, <see cref="LibTorchVariable"/>), device choice and seeding. Every public
/// entry point of Svg.ML calls <see cref="EnsureInitialized"/>; the module initializer applies the native fix and the
/// environment's libtorch choice as soon as the Svg.ML assembly loads, before TorchSharp's first native call.
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

    /// <summary>Environment variable: a libtorch folder to load instead of a backend package (see <see cref="UseLibTorch"/>).</summary>
    public const string LibTorchVariable = "SVGML_LIBTORCH";

    /// <summary>Environment variable: a Python whose <c>torch</c> package's libtorch to load (see <see cref="UseLibTorchFromPython"/>).</summary>
    public const string LibTorchPythonVariable = "SVGML_LIBTORCH_PYTHON";

    /// <summary>The libtorch loaded from outside the app (<see cref="UseLibTorch"/> or the environment), or null.</summary>
    public static LibTorchInstall? LibTorch => ExternalLibTorch.Active;

    /// <summary>
    /// Loads libtorch from <paramref name="directory"/> (a libtorch download, its lib/ folder, or a Python torch
    /// package's torch/lib) instead of a backend package; call it before any TorchSharp call. Throws a clear error when
    /// the folder has no libtorch, its version is older than TorchSharp 0.107's 2.10, or it lacks symbols TorchSharp's
    /// native library imports. Setting <see cref="LibTorchVariable"/> does the same at start-up.
    /// </summary>
    public static LibTorchInstall UseLibTorch(string directory)
    {
        EnsureNativeLibraryLoadable();
        lock (Gate) return ExternalLibTorch.Load(LibTorchInstall.FromDirectory(directory), LibTorchSharpFile(), _log);
    }

    /// <summary>Like <see cref="UseLibTorch"/> for the torch package of <paramref name="python"/> (e.g. "python3"), which
    /// is asked for its location, version and CUDA version. <see cref="LibTorchPythonVariable"/> does the same at start-up.</summary>
    public static LibTorchInstall UseLibTorchFromPython(string python)
    {
        EnsureNativeLibraryLoadable();
        lock (Gate) return ExternalLibTorch.Load(LibTorchInstall.FromPython(python), LibTorchSharpFile(), _log);
    }

    /// <summary>Applies the native fix where needed, then loads the libtorch named by <see cref="LibTorchVariable"/> or
    /// <see cref="LibTorchPythonVariable"/> if set; idempotent and cheap after the first call.</summary>
    public static void EnsureNativeLibraryLoadable()
    {
        lock (Gate)
        {
            if (_nativeReady) return;
            _nativeReady = true;
            if (!OperatingSystem.IsLinux()) { _log.Add("not Linux: nothing to do"); return; }
            ApplyGlibcxxFix();
            ExternalLibTorch.FromEnvironment(LibTorchSharpFile(), _log);
        }
    }

    static void ApplyGlibcxxFix()
    {
        try
        {
            if (GlibcxxWeakVersionPatch.SystemLibstdcxxHasVersion())
            {
                _log.Add($"system libstdc++ defines {GlibcxxWeakVersionPatch.MissingVersion}: nothing to do");
                return;
            }
            string? torchDir = Path.GetDirectoryName(typeof(torch).Assembly.Location);
            if (!string.IsNullOrEmpty(torchDir) && TorchSharpShadowCopy.Seed(torchDir) is { } seeded)
                _log.Add($"{seeded}: seeded TorchSharp's consolidation folder (notebook / script host)");
            foreach (string file in CandidateFiles())
            {
                bool shadowCopy = !string.IsNullOrEmpty(torchDir) && TorchSharpShadowCopy.IsShadowCopy(file, torchDir);
                if (!shadowCopy && IsInPackageCache(file)) { _log.Add($"{file}: in the NuGet cache, left alone"); continue; }
                bool changed = GlibcxxWeakVersionPatch.PatchFile(file);
                _log.Add($"{file}: {(changed ? "patched" : "already weak")}");
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            _log.Add("native fix failed: " + e.Message);
        }
    }

    /// <summary>TorchSharp's native library as the app would load it (the first of the candidate files), or null.</summary>
    static string? LibTorchSharpFile() => CandidateFiles().FirstOrDefault();

    /// <summary>Applies the native fix and initialises TorchSharp (CPU backend); throws a clear error if it cannot.</summary>
    public static void EnsureInitialized()
    {
        EnsureNativeLibraryLoadable();
        if (_torchReady) return;
        lock (Gate)
        {
            if (_torchReady) return;
            if (ExternalLibTorch.Failure is { } failure) throw new InvalidOperationException(failure);
            try { InitializeDeviceType(DeviceType.CPU); }
            catch (Exception e)
            {
                throw new InvalidOperationException(
                    "TorchSharp could not load its native library. Reference a backend package (TorchSharp-cpu, or a CUDA " +
                    $"package) from the application, or set {LibTorchVariable} to a libtorch folder. Native fix log: " + string.Join("; ", _log), e);
            }
            CheckNoSecondLibTorch();
            OneDnnConvolutionGuard.Apply();   // disables oneDNN where its float32 convolutions are wrong
            _torchReady = true;
        }
    }

    /// <summary>With an external libtorch, refuses a process that mapped libtorch files from elsewhere too (e.g. a
    /// CUDA backend package in the app folder, probed by TorchSharp's static constructor).</summary>
    static void CheckNoSecondLibTorch()
    {
        if (LibTorch is not { } external) return;
        var foreign = ExternalLibTorch.ForeignLibraries(external);
        if (foreign.Count > 0)
            throw new InvalidOperationException(
                $"libtorch was loaded from {external.LibDirectory} ({LibTorchVariable}), and TorchSharp loaded a second one: " +
                $"{string.Join(", ", foreign)}. Remove the backend package (TorchSharp-cpu / TorchSharp-cuda-*) from the app, or unset {LibTorchVariable}.");
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
            dirs.AddRange(TorchSharpShadowCopy.Folders(d));
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
        CheckNoSecondLibTorch();
        if (available) return new Device(DeviceType.CUDA, gpuDeviceId.Value);
        if (fallbackToCpu) return CPU;
        if (LibTorch is { HasCuda: false } external)
            throw new InvalidOperationException(
                $"GPU device {gpuDeviceId} was requested (MLContext.GpuDeviceId) but the libtorch loaded from {external.LibDirectory} " +
                $"is a CPU-only build (no libtorch_cuda.so), and MLContext.FallbackToCpu is false. Use a CUDA build: `{LibTorchInstall.PipCommand}`.");
        throw new InvalidOperationException(
            $"GPU device {gpuDeviceId} was requested (MLContext.GpuDeviceId) but CUDA is not available to TorchSharp " +
            "(reference a TorchSharp CUDA backend package instead of TorchSharp-cpu, or set " + LibTorchVariable + " to a CUDA " +
            "build of libtorch), and MLContext.FallbackToCpu is false.");
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
