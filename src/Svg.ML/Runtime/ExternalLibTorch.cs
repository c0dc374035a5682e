using System.Reflection;
using System.Runtime.InteropServices;
using TorchSharp;

namespace Svg.ML.Runtime;

/// <summary>
/// Loads libtorch from a folder outside the application (<see cref="LibTorchInstall"/>) before TorchSharp initialises,
/// so that TorchSharp 0.107 runs without a backend package (TorchSharp-cpu / TorchSharp-cuda-linux), e.g. on a pip
/// torch's CUDA libraries.
/// </summary>
/// <remarks>
/// How TorchSharp 0.107 loads its backend (src/TorchSharp/Torch.cs, <c>LoadNativeBackend</c>, release commit
/// c20b6a1c): <c>torch</c>'s static initialiser (<c>torch.CPU = InitializeDevice(...)</c>, then
/// <c>TryInitializeDeviceType(CUDA)</c>) runs <c>NativeLibrary.TryLoad("torch_cpu" / "torch_cuda", TorchSharp
/// assembly)</c> and then <c>NativeLibrary.TryLoad("LibTorchSharp", ...)</c>, copying libtorch out of the NuGet cache
/// only if that fails; it reads no environment variable of its own. Those name probes search the app folder first, then
/// the dynamic loader, which answers a bare name with an already loaded library of that soname. So this class
/// (1) checks the folder (files, version, the libtorch/c10 symbols libLibTorchSharp.so imports); (2) loads its
/// libraries by full path in dependency order, CUDA ones before libtorch.so so libtorch registers its CUDA hooks, then
/// the app's libLibTorchSharp.so, whose NEEDED entries (libtorch.so, libc10.so, libtorch_cpu.so) the loader matches by
/// soname to the loaded ones; (3) answers TorchSharp's <c>DllImport("LibTorchSharp")</c> with that handle (a
/// <see cref="DllImportResolver"/>; <c>NativeLibrary.TryLoad</c> does not consult it). An app folder that carries its
/// own libtorch (a TorchSharp-cpu / -cuda package) would still be probed first and load a second libtorch: measured,
/// not prevented from outside TorchSharp; <see cref="ForeignLibraries"/> finds it and TorchRuntime refuses to go on.
/// </remarks>
internal static class ExternalLibTorch
{
    static readonly object Gate = new();
    static IntPtr _libTorchSharp;

    /// <summary>The libtorch loaded from outside the app, or null.</summary>
    internal static LibTorchInstall? Active { get; private set; }

    /// <summary>Why the libtorch named by the environment could not be used (thrown by EnsureInitialized), or null.</summary>
    internal static string? Failure { get; private set; }

    /// <summary>Applies <see cref="TorchRuntime.LibTorchVariable"/> or <see cref="TorchRuntime.LibTorchPythonVariable"/>;
    /// records a failure instead of throwing (it runs in the module initializer).</summary>
    internal static void FromEnvironment(string? libTorchSharp, List<string> log)
    {
        string? dir = Env(TorchRuntime.LibTorchVariable), python = Env(TorchRuntime.LibTorchPythonVariable);
        if (dir is null && python is null) return;
        if (dir is not null && python is not null) log.Add($"{TorchRuntime.LibTorchVariable} and {TorchRuntime.LibTorchPythonVariable} both set: using {TorchRuntime.LibTorchVariable}");
        string what = dir is not null ? $"{TorchRuntime.LibTorchVariable}={dir}" : $"{TorchRuntime.LibTorchPythonVariable}={python}";
        try { Load(dir is not null ? LibTorchInstall.FromDirectory(dir) : LibTorchInstall.FromPython(python!), libTorchSharp, log); }
        catch (InvalidOperationException e)
        {
            Failure = $"{what}: {e.Message}";
            log.Add(Failure);
        }
    }

    static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;

    /// <summary>Checks and loads <paramref name="install"/>; throws <see cref="InvalidOperationException"/> with the reason.</summary>
    internal static LibTorchInstall Load(LibTorchInstall install, string? libTorchSharp, List<string> log)
    {
        lock (Gate)
        {
            if (Active is not null)
            {
                if (Active.LibDirectory == install.LibDirectory) return Active;
                throw new InvalidOperationException($"libtorch is already loaded from {Active.LibDirectory}; a process can load one libtorch.");
            }
            string? other = ForeignLibraries(install).FirstOrDefault();
            if (other is not null)
                throw new InvalidOperationException(
                    $"libtorch is already loaded from {other}: choose the libtorch folder before TorchSharp's first call " +
                    $"(set {TorchRuntime.LibTorchVariable} before the process starts, or call TorchRuntime.UseLibTorch first).");
            if (libTorchSharp is null)
                throw new InvalidOperationException(
                    $"{GlibcxxWeakVersionPatch.LibraryFileName} (TorchSharp's native library, from the TorchSharp package) is not in the app folder {AppContext.BaseDirectory}.");

            LibTorchInstall.CheckVersion(install.Version, install.VersionSource, install.LibDirectory);
            var watch = System.Diagnostics.Stopwatch.StartNew();
            var missing = install.MissingSymbols(libTorchSharp);
            if (missing.Count > 0)
                throw new InvalidOperationException(
                    $"libtorch {install.Version ?? "(version unknown)"} at {install.LibDirectory} lacks {missing.Count} of the libtorch/c10 " +
                    $"symbols {libTorchSharp} (TorchSharp 0.107, built for libtorch {LibTorchInstall.ExpectedVersion}) imports: its ABI does not fit. " +
                    $"First missing: {string.Join(", ", missing.Take(8))}. Install a fitting torch, e.g. `{LibTorchInstall.PipCommand}`.");
            log.Add($"libtorch {install.Version ?? "(version unknown)"} (from {install.VersionSource}) at {install.LibDirectory}: " +
                    $"defines every libtorch/c10 symbol {GlibcxxWeakVersionPatch.LibraryFileName} imports (checked in {watch.ElapsedMilliseconds} ms); " +
                    $"CUDA build: {install.HasCuda}");
            if (install.IsNewerThanVerified)
                log.Add($"note: libtorch {install.Version} is newer than the newest verified with TorchSharp 0.107 ({LibTorchInstall.NewestVerifiedVersion})");

            watch.Restart();
            var handles = new Dictionary<string, IntPtr>();
            foreach (string lib in install.Libraries().Append(libTorchSharp))
            {
                try { handles[Path.GetFileName(lib)] = NativeLibrary.Load(lib); }
                catch (DllNotFoundException e)
                {
                    throw new InvalidOperationException($"Loading {lib} failed: {e.Message}", e);
                }
                log.Add($"loaded {lib}");
            }
            log.Add($"loaded in {watch.ElapsedMilliseconds} ms");
            _libTorchSharp = handles[GlibcxxWeakVersionPatch.LibraryFileName];
            try { NativeLibrary.SetDllImportResolver(typeof(torch).Assembly, Resolve); }
            catch (InvalidOperationException e) { log.Add($"TorchSharp already has an import resolver ({e.Message}): left as is"); }
            Active = install;
            Failure = null;
            return install;
        }
    }

    static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath) =>
        name == "LibTorchSharp" ? _libTorchSharp : IntPtr.Zero;

    /// <summary>The libtorch/c10 files mapped into this process (from /proc/self/maps) that are not files of
    /// <paramref name="install"/> (compared by path and by real path: the maps show a symbolic link's target).</summary>
    internal static List<string> ForeignLibraries(LibTorchInstall install)
    {
        if (!File.Exists("/proc/self/maps")) return new List<string>();
        var own = new HashSet<string>(StringComparer.Ordinal);
        foreach (var f in Directory.EnumerateFiles(install.LibDirectory)) { own.Add(f); own.Add(RealPath(f)); }
        var foreign = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines("/proc/self/maps"))
        {
            int i = line.IndexOf('/');
            if (i < 0) continue;
            string path = line[i..].Trim(), name = Path.GetFileName(path);
            if ((name.StartsWith("libtorch", StringComparison.Ordinal) || name.StartsWith("libc10", StringComparison.Ordinal)) && !own.Contains(path))
                foreign.Add(path);
        }
        return foreign.ToList();
    }

    static string RealPath(string path) => new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? path;
}
