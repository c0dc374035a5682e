using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Svg.ML.Runtime;

/// <summary>
/// A libtorch outside the application: the <c>lib/</c> folder of a libtorch download, of a Python <c>torch</c> package
/// (<c>site-packages/torch/lib</c>) or of a libtorch NuGet package. <see cref="TorchRuntime.UseLibTorch"/> loads it.
/// </summary>
/// <param name="LibDirectory">The folder holding libtorch.so, libtorch_cpu.so and libc10.so.</param>
/// <param name="Version">libtorch's version ("2.11.0+cu130"), or null when nothing next to the folder says it.</param>
/// <param name="VersionSource">Where <paramref name="Version"/> was read (a file, or the Python that was asked).</param>
/// <param name="CudaVersion">The CUDA version the build targets, when known; null for CPU builds or when unknown.</param>
/// <param name="HasCuda">True when the folder has libtorch_cuda.so and libc10_cuda.so.</param>
public sealed record LibTorchInstall(string LibDirectory, string? Version, string VersionSource, string? CudaVersion, bool HasCuda)
{
    /// <summary>The libtorch version TorchSharp 0.107's native library (libLibTorchSharp.so) was built against.</summary>
    public const string ExpectedVersion = "2.10";

    /// <summary>Newest version checked to run TorchSharp 0.107 correctly (pip torch 2.11.0+cu130, known-answer tests).</summary>
    public const string NewestVerifiedVersion = "2.11";

    /// <summary>The files a libtorch folder must hold.</summary>
    public static readonly string[] RequiredFiles = { "libtorch.so", "libtorch_cpu.so", "libc10.so" };

    /// <summary>The extra files of a CUDA build.</summary>
    public static readonly string[] CudaFiles = { "libc10_cuda.so", "libtorch_cuda.so" };

    /// <summary>The pip command that installs a libtorch TorchSharp 0.107 runs on with CUDA (the one verified on an H200).</summary>
    public const string PipCommand = "pip install torch==2.11.0 --index-url https://download.pytorch.org/whl/cu130";

    /// <summary>Describes the libtorch in <paramref name="directory"/> (or in its <c>lib/</c> subfolder); throws a clear
    /// error naming the expected files when there is none.</summary>
    public static LibTorchInstall FromDirectory(string directory, string? version = null, string? versionSource = null, string? cuda = null)
    {
        string dir = Path.GetFullPath(directory);
        if (!Directory.Exists(dir)) throw new InvalidOperationException($"libtorch folder {dir} does not exist.");
        if (!RequiredFiles.All(f => File.Exists(Path.Combine(dir, f))) && RequiredFiles.All(f => File.Exists(Path.Combine(dir, "lib", f))))
            dir = Path.Combine(dir, "lib");   // the root of a libtorch download or of the torch package
        var missing = RequiredFiles.Where(f => !File.Exists(Path.Combine(dir, f))).ToArray();
        if (missing.Length > 0)
            throw new InvalidOperationException(
                $"No libtorch in {dir}: expected {string.Join(", ", RequiredFiles)} (missing: {string.Join(", ", missing)}), and " +
                $"{string.Join(" and ", CudaFiles)} for CUDA. Give the lib/ folder of a libtorch download or of a Python torch " +
                $"package (site-packages/torch/lib; `{PipCommand}` installs one).");
        bool hasCuda = CudaFiles.All(f => File.Exists(Path.Combine(dir, f)));
        if (version is null) (version, versionSource, cuda) = ReadVersion(dir);
        return new LibTorchInstall(dir, version, versionSource ?? "unknown", cuda, hasCuda);
    }

    /// <summary>Asks <paramref name="python"/> where its <c>torch</c> package is and which version it is, and describes
    /// that package's <c>lib/</c> folder.</summary>
    public static LibTorchInstall FromPython(string python)
    {
        const string script = "import json, os, torch; print(json.dumps({'dir': os.path.dirname(torch.__file__), " +
                              "'version': torch.__version__, 'cuda': torch.version.cuda}))";
        var psi = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        string stdout, stderr;
        int code;
        try
        {
            using var p = Process.Start(psi)!;
            var err = p.StandardError.ReadToEndAsync();
            stdout = p.StandardOutput.ReadToEnd();
            if (!p.WaitForExit(120_000)) { p.Kill(); throw new InvalidOperationException($"{python} did not answer within 120 s."); }
            stderr = err.Result;
            code = p.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"Cannot run the Python {python} to find its torch package: {e.Message}", e);
        }
        string? line = stdout.Split('\n').Select(l => l.Trim()).LastOrDefault(l => l.StartsWith('{'));
        if (code != 0 || line is null)
        {
            string tail = string.Join(" | ", stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).TakeLast(3));
            throw new InvalidOperationException($"{python} could not import torch (exit code {code}): {tail}. Install it with `{PipCommand}`.");
        }
        using var doc = JsonDocument.Parse(line);
        var root = doc.RootElement;
        string dir = root.GetProperty("dir").GetString()!;
        string version = root.GetProperty("version").GetString()!;
        string? cuda = root.TryGetProperty("cuda", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
        string source = $"torch.__version__ of {python}";
        CheckVersion(version, source, dir);   // before the files: an old torch (e.g. Debian's 1.13) may lay them out differently
        return FromDirectory(Path.Combine(dir, "lib"), version, source, cuda);
    }

    /// <summary>
    /// Reads the version next to a lib folder: torch/version.py (Python package), build-version (libtorch download),
    /// the .nuspec (NuGet package), or the version suffix of the real libtorch_cpu.so file (Debian: libtorch_cpu.so.1.13).
    /// </summary>
    public static (string? Version, string Source, string? Cuda) ReadVersion(string libDirectory)
    {
        string parent = Path.GetFullPath(Path.Combine(libDirectory, ".."));
        string versionPy = Path.Combine(parent, "version.py");
        if (File.Exists(versionPy))
        {
            string text = File.ReadAllText(versionPy);
            var v = Regex.Match(text, @"^__version__\s*=\s*['""]([^'""]+)['""]", RegexOptions.Multiline);
            var c = Regex.Match(text, @"^cuda\s*(?::[^=]*)?=\s*['""]([^'""]+)['""]", RegexOptions.Multiline);
            if (v.Success) return (v.Groups[1].Value, versionPy, c.Success ? c.Groups[1].Value : null);
        }
        string buildVersion = Path.Combine(parent, "build-version");
        if (File.Exists(buildVersion)) return (File.ReadAllText(buildVersion).Trim(), buildVersion, null);
        for (var d = new DirectoryInfo(libDirectory); d is not null; d = d.Parent)
        {
            var nuspec = d.GetFiles("libtorch-*.nuspec").FirstOrDefault();
            if (nuspec is null) continue;
            var m = Regex.Match(File.ReadAllText(nuspec.FullName), @"<version>([^<]+)</version>");
            if (m.Success) return (m.Groups[1].Value, nuspec.FullName, null);
        }
        var real = new FileInfo(Path.Combine(libDirectory, "libtorch_cpu.so")).ResolveLinkTarget(returnFinalTarget: true);
        var s = real is null ? Match.Empty : Regex.Match(real.Name, @"\.so\.(\d+\.\d+(?:\.\d+)?)$");
        if (s.Success) return (s.Groups[1].Value, real!.FullName, null);
        return (null, "unknown", null);
    }

    /// <summary>Refuses libtorch versions older than <see cref="ExpectedVersion"/> (TorchSharp 0.107's native library
    /// needs symbols they lack); newer ones pass here and are judged by the symbol check.</summary>
    public static void CheckVersion(string? version, string source, string where)
    {
        if (version is null) return;
        var m = Regex.Match(version, @"^(\d+)\.(\d+)");
        if (!m.Success) return;
        var v = new System.Version(int.Parse(m.Groups[1].Value), int.Parse(m.Groups[2].Value));
        if (v < System.Version.Parse(ExpectedVersion))
            throw new InvalidOperationException(
                $"libtorch {version} at {where} (read from {source}) does not fit TorchSharp 0.107, which is built for libtorch " +
                $"{ExpectedVersion} (verified on {ExpectedVersion} and {NewestVerifiedVersion}). Install a fitting torch, e.g. `{PipCommand}`.");
    }

    /// <summary>True when <see cref="Version"/> is newer than <see cref="NewestVerifiedVersion"/>.</summary>
    public bool IsNewerThanVerified
    {
        get
        {
            var m = Version is null ? Match.Empty : Regex.Match(Version, @"^(\d+)\.(\d+)");
            return m.Success && new System.Version(int.Parse(m.Groups[1].Value), int.Parse(m.Groups[2].Value)) > System.Version.Parse(NewestVerifiedVersion);
        }
    }

    /// <summary>The libraries whose symbols libLibTorchSharp.so may import, in load order.</summary>
    public IEnumerable<string> Libraries()
    {
        yield return Path.Combine(LibDirectory, "libc10.so");
        yield return Path.Combine(LibDirectory, "libtorch_cpu.so");
        if (HasCuda)
            foreach (var f in CudaFiles) yield return Path.Combine(LibDirectory, f);
        yield return Path.Combine(LibDirectory, "libtorch.so");
    }

    /// <summary>The libtorch/c10 symbols <paramref name="libTorchSharp"/> needs that this install does not define.</summary>
    public List<string> MissingSymbols(string libTorchSharp) =>
        ElfDynamicSymbols.Missing(ElfDynamicSymbols.NeededUnversioned(libTorchSharp), Libraries());
}
