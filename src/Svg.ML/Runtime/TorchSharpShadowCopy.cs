using System.Runtime.InteropServices;

namespace Svg.ML.Runtime;

/// <summary>
/// The native libraries TorchSharp copies for scripts and notebooks. When <c>TorchSharp.dll</c> is loaded straight from
/// the NuGet cache (.NET Interactive, F# Interactive), TorchSharp consolidates the native files of its packages into a
/// folder beside itself (<c>lib/net8.0/cpu</c>, <c>lib/net8.0/cuda-*</c>) and loads <c>libLibTorchSharp.so</c> from
/// there. Those copies are TorchSharp's own files, not package contents, so <see cref="TorchRuntime"/> patches them
/// like an application's output copy (<see cref="GlibcxxWeakVersionPatch"/>); the packages' files stay untouched.
/// </summary>
public static class TorchSharpShadowCopy
{
    /// <summary>True when <paramref name="file"/> is in one of TorchSharp's consolidation folders beside
    /// <paramref name="torchSharpDirectory"/> (the folder of <c>TorchSharp.dll</c>).</summary>
    public static bool IsShadowCopy(string file, string torchSharpDirectory)
    {
        var folder = new DirectoryInfo(Path.GetDirectoryName(Path.GetFullPath(file))!);
        return folder.Parent is { } parent
               && string.Equals(Path.TrimEndingDirectorySeparator(parent.FullName),
                                Path.TrimEndingDirectorySeparator(Path.GetFullPath(torchSharpDirectory)), StringComparison.Ordinal)
               && (folder.Name == "cpu" || folder.Name.StartsWith("cuda-", StringComparison.Ordinal));
    }

    /// <summary>The consolidation folders that exist beside <paramref name="torchSharpDirectory"/>.</summary>
    public static IEnumerable<string> Folders(string torchSharpDirectory) =>
        Directory.Exists(torchSharpDirectory)
            ? Directory.GetDirectories(torchSharpDirectory).Where(d => Path.GetFileName(d) is "cpu" || Path.GetFileName(d).StartsWith("cuda-", StringComparison.Ordinal))
            : [];

    /// <summary>
    /// When <c>TorchSharp.dll</c> lives in a NuGet package folder (<c>…/torchsharp/VERSION/lib/TFM/</c>), copies the
    /// package's <c>libLibTorchSharp.so</c> into the <c>cpu</c> consolidation folder before TorchSharp's first load, so
    /// it can be patched first (TorchSharp copies only the files that are not there yet). Returns the copy's path, or
    /// null when there is nothing to do (not a package folder, no library, or the copy already exists).
    /// </summary>
    public static string? Seed(string torchSharpDirectory)
    {
        string lib = GlibcxxWeakVersionPatch.LibraryFileName;
        string target = Path.Combine(torchSharpDirectory, "cpu", lib);
        if (File.Exists(target)) return null;
        string rid = RuntimeInformation.OSArchitecture == Architecture.Arm64 ? "linux-arm64" : "linux-x64";
        string package = Path.GetFullPath(Path.Combine(torchSharpDirectory, "..", ".."));
        string original = Path.Combine(package, "runtimes", rid, "native", lib);
        bool inPackage = Directory.Exists(package) && (File.Exists(Path.Combine(package, ".nupkg.metadata")) || Directory.GetFiles(package, "*.nuspec").Length > 0);
        if (!inPackage || !File.Exists(original)) return null;
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        string tmp = target + $".svgml-{Environment.ProcessId}.tmp";
        File.Copy(original, tmp, overwrite: true);
        try { File.Move(tmp, target, overwrite: false); }
        catch (IOException) when (File.Exists(target)) { File.Delete(tmp); return null; }   // another process was first
        return target;
    }
}
