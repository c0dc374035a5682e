using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Svg.ML.NotebookRunner;

/// <summary>
/// In a notebook host TorchSharp first loads <c>torch_cpu</c> by name, so a system libtorch (Debian's
/// <c>libtorch1.13</c>, installed with <c>python3-torch</c>) is found before the NuGet backend's and LibTorchSharp
/// then fails with undefined symbols. The runner therefore runs its notebooks in a child process whose
/// <c>LD_LIBRARY_PATH</c> starts with the folder of TorchSharp-cpu's libtorch in the NuGet cache (the dynamic loader
/// reads the variable only at process start). Linux only; elsewhere nothing changes.
/// </summary>
public static class NativeEnvironment
{
    /// <summary>The TorchSharp-cpu version the notebooks reference.</summary>
    public const string TorchSharpCpuVersion = "0.107.0";
    const string Marker = "SVGML_NOTEBOOK_RUNNER_CHILD";

    /// <summary>True when this process should relaunch itself with <paramref name="libraryPath"/> as LD_LIBRARY_PATH.</summary>
    public static bool RelaunchNeeded(out string libraryPath)
    {
        libraryPath = "";
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable(Marker) is not null) return false;
        string? folder = LibTorchCpuFolder();
        if (folder is null) return false;
        string? current = Environment.GetEnvironmentVariable("LD_LIBRARY_PATH");
        libraryPath = string.IsNullOrEmpty(current) ? folder : folder + ":" + current;
        return true;
    }

    /// <summary>The native folder of the libtorch-cpu package TorchSharp-cpu depends on, or null when not restored.</summary>
    public static string? LibTorchCpuFolder()
    {
        string cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p ? p
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string nuspec = Path.Combine(cache, "torchsharp-cpu", TorchSharpCpuVersion, "torchsharp-cpu.nuspec");
        if (!File.Exists(nuspec)) return null;
        var dependency = System.Xml.Linq.XDocument.Load(nuspec).Descendants()
            .FirstOrDefault(e => e.Name.LocalName == "dependency" && (string?)e.Attribute("id") == "libtorch-cpu");
        string? version = (string?)dependency?.Attribute("version");
        if (version is null) return null;
        string rid = RuntimeInformation.OSArchitecture == Architecture.Arm64 ? "linux-arm64" : "linux-x64";
        string folder = Path.Combine(cache, $"libtorch-cpu-{rid}", version, "runtimes", rid, "native");
        return Directory.Exists(folder) ? folder : null;
    }

    /// <summary>Runs this program again with the same arguments and LD_LIBRARY_PATH set; returns its exit code.</summary>
    public static async Task<int> RunChildAsync(string libraryPath, string[] args)
    {
        var psi = new ProcessStartInfo(Environment.ProcessPath!) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet") psi.ArgumentList.Add(typeof(NativeEnvironment).Assembly.Location);
        foreach (string a in args) psi.ArgumentList.Add(a);
        psi.Environment["LD_LIBRARY_PATH"] = libraryPath;
        psi.Environment[Marker] = "1";
        using var child = Process.Start(psi)!;
        await child.WaitForExitAsync();
        return child.ExitCode;
    }
}
