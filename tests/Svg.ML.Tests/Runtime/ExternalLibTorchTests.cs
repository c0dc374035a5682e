using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using Svg.ML.Runtime;
using Xunit;

namespace Svg.ML.Tests.Runtime;

/// <summary>
/// libtorch from a folder outside the app (SVGML_LIBTORCH / SVGML_LIBTORCH_PYTHON). A process loads libtorch once, so
/// each case runs tests/Svg.ML.LibTorchHost (an app with no backend package, hence no libtorch in its folder) as a child
/// process. The libtorch used is this test app's own (TorchSharp-cpu's libtorch 2.10), hard-linked into a temporary
/// folder laid out like a libtorch download (build-version + lib/).
/// </summary>
public sealed class ExternalLibTorchTests : IDisposable
{
    readonly string _root = Path.Combine(Path.GetTempPath(), $"svgml-libtorch-{Guid.NewGuid():N}");

    public void Dispose() { try { Directory.Delete(_root, recursive: true); } catch (IOException) { } }

    [DllImport("libc", SetLastError = true)]
    static extern int link(string existing, string created);

    /// <summary>This test app's libtorch folder (TorchSharp-cpu copies it next to the tests).</summary>
    static string OwnLibTorchFolder() =>
        Path.GetDirectoryName(Directory.EnumerateFiles(AppContext.BaseDirectory, "libtorch_cpu.so", SearchOption.AllDirectories).First())!;

    static void Link(string existing, string created)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(created)!);
        if (link(existing, created) != 0) File.CreateSymbolicLink(created, existing);   // another file system
    }

    /// <summary>A libtorch download layout under _root/name: build-version and lib/ with links to this app's libtorch.</summary>
    string MakeLibTorch(string name, string version)
    {
        string dir = Path.Combine(_root, name);
        foreach (var f in Directory.EnumerateFiles(OwnLibTorchFolder()).Where(f => !f.EndsWith(GlibcxxWeakVersionPatch.LibraryFileName)))
            Link(f, Path.Combine(dir, "lib", Path.GetFileName(f)));
        File.WriteAllText(Path.Combine(dir, "build-version"), version + "\n");
        return dir;
    }

    static string HostDll() =>
        typeof(ExternalLibTorchTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "LibTorchHost").Value!;

    /// <summary>Runs the host with <paramref name="env"/>; returns its exit code and its key=value lines.</summary>
    (int Code, ILookup<string, string> Lines, string Text) RunHost(string hostDll, params (string Key, string Value)[] env)
    {
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(hostDll);
        psi.Environment.Remove(TorchRuntime.LibTorchVariable);
        psi.Environment.Remove(TorchRuntime.LibTorchPythonVariable);
        // An empty NuGet cache: TorchSharp's own fallback (copying libtorch out of the cache) must not rescue a failure.
        string emptyCache = Path.Combine(_root, "empty-nuget");
        Directory.CreateDirectory(emptyCache);
        psi.Environment["NUGET_PACKAGES"] = emptyCache;
        // oneDNN off: the child skips the guard's self-test (faster), and its convolution is ATen's exact one on every CPU.
        psi.Environment["SVGML_ONEDNN"] = "off";
        foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string text = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(60_000), "the host did not finish within 60 s");
        text += err.Result;
        var lines = text.Split('\n').Select(l => l.TrimEnd()).Where(l => l.Contains('='))
                        .ToLookup(l => l[..l.IndexOf('=')], l => l[(l.IndexOf('=') + 1)..]);
        return (p.ExitCode, lines, text);
    }

    static void AssertComputes(ILookup<string, string> lines, string text)
    {
        // arange(12) as 3x4 times its transpose, and a 3x3 box filter over ones: exact in float32.
        Assert.True(lines["matmul"].SingleOrDefault() == "14,38,62,38,126,214,62,214,366", text);
        Assert.Equal("9,9,9,9", lines["conv"].Single());
    }

    /// <summary>Every libtorch/c10 file the child mapped is one of <paramref name="libDir"/>'s files (or, where the
    /// files are symbolic links, their targets), and libtorch_cpu.so is among them.</summary>
    static void AssertMappedOnlyFrom(ILookup<string, string> lines, string libDir, string text)
    {
        var own = Directory.EnumerateFiles(libDir)
            .SelectMany(f => new[] { f, new FileInfo(f).ResolveLinkTarget(true)?.FullName ?? f }).ToHashSet();
        var torch = lines["mapped"].Where(p => !p.EndsWith(GlibcxxWeakVersionPatch.LibraryFileName)).Distinct().ToList();
        Assert.Contains(torch, p => Path.GetFileName(p) == "libtorch_cpu.so");
        Assert.All(torch, p => Assert.True(own.Contains(p), $"{p} is not from {libDir}\n{text}"));
    }

    [Fact]
    public void Folder_LoadsLibTorchFromThere_AndComputes()
    {
        string root = MakeLibTorch("libtorch", "2.10.0+cpu");
        var (code, lines, text) = RunHost(HostDll(), (TorchRuntime.LibTorchVariable, root));
        Assert.True(code == 0, text);
        Assert.Equal(Path.Combine(root, "lib"), lines["libdir"].Single());   // the download's root was given: lib/ found
        Assert.Equal("2.10.0+cpu", lines["version"].Single());
        Assert.Equal("False", lines["cuda_build"].Single());
        AssertComputes(lines, text);
        AssertMappedOnlyFrom(lines, Path.Combine(root, "lib"), text);
        // TorchSharp's own native library comes from the host app's folder, which has no libtorch.
        string hostDir = Path.GetDirectoryName(HostDll())!;
        Assert.Contains(lines["mapped"], p => p.StartsWith(hostDir) && p.EndsWith(GlibcxxWeakVersionPatch.LibraryFileName));
        Assert.Empty(Directory.EnumerateFiles(hostDir, "libtorch_cpu.so*", SearchOption.AllDirectories));
    }

    [Fact]
    public void Python_LoadsItsTorchLib_AndComputes()
    {
        if (OperatingSystem.IsWindows()) return;   // the loader is Linux-only (ELF, /proc/self/maps)
        // A stand-in Python that answers the probe as `import torch` would for a torch package at _root/torch.
        string torchDir = MakeLibTorch("torch", "unused");
        string python = Path.Combine(_root, "python");
        File.WriteAllText(python, $"#!/bin/sh\necho '{{\"dir\": \"{torchDir}\", \"version\": \"2.10.0+cpu\", \"cuda\": null}}'\n");
        File.SetUnixFileMode(python, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        var (code, lines, text) = RunHost(HostDll(), (TorchRuntime.LibTorchPythonVariable, python));
        Assert.True(code == 0, text);
        Assert.Equal("2.10.0+cpu", lines["version"].Single());   // the Python's answer, not the build-version file
        AssertComputes(lines, text);
        AssertMappedOnlyFrom(lines, Path.Combine(torchDir, "lib"), text);
    }

    [Fact]
    public void FolderWithoutLibTorch_IsRefused_NamingTheExpectedFiles()
    {
        string empty = Path.Combine(_root, "empty");
        Directory.CreateDirectory(empty);
        var (code, lines, text) = RunHost(HostDll(), (TorchRuntime.LibTorchVariable, empty));
        Assert.Equal(3, code);
        string error = lines["error"].Single();
        Assert.Contains($"No libtorch in {empty}", error);
        foreach (var f in LibTorchInstall.RequiredFiles.Concat(LibTorchInstall.CudaFiles)) Assert.Contains(f, error);
        Assert.DoesNotContain(lines["mapped"], p => Path.GetFileName(p).StartsWith("libtorch"));
    }

    [Fact]
    public void OldLibTorch_IsRefused_WithTheVersions()
    {
        string root = MakeLibTorch("old", "1.13.1");
        var (code, lines, text) = RunHost(HostDll(), (TorchRuntime.LibTorchVariable, root));
        Assert.True(code == 3, text);
        Assert.Contains("libtorch 1.13.1", lines["error"].Single());
        Assert.Contains("built for libtorch 2.10", lines["error"].Single());
    }

    /// <summary>Debian's python3-torch (1.13) where installed: refused by version before anything is loaded.</summary>
    [Fact]
    public void DebianPythonTorch_IsRefused_ForItsVersion()
    {
        if (!File.Exists("/usr/bin/python3") || !File.Exists("/usr/lib/python3/dist-packages/torch/version.py")) return;
        var (code, lines, text) = RunHost(HostDll(), (TorchRuntime.LibTorchPythonVariable, "/usr/bin/python3"));
        Assert.True(code == 3, text);
        string error = lines["error"].Single();
        Assert.Contains("libtorch 1.13", error);
        Assert.Contains("torch.__version__ of /usr/bin/python3", error);
        Assert.Contains("does not fit TorchSharp 0.107, which is built for libtorch 2.10", error);
    }

    /// <summary>An app folder that carries its own libtorch gets a second copy from TorchSharp's probe: refused, named.</summary>
    [Fact]
    public void AppFolderWithItsOwnLibTorch_IsRefused()
    {
        string hostDir = Path.GetDirectoryName(HostDll())!, app = Path.Combine(_root, "app");
        foreach (var f in Directory.EnumerateFiles(hostDir, "*", SearchOption.AllDirectories))
            Link(f, Path.Combine(app, Path.GetRelativePath(hostDir, f)));
        // A small real library under libtorch_cpu.so's name (a copy: another file than the linked ones).
        File.Copy(Path.Combine(OwnLibTorchFolder(), "libtorch.so"), Path.Combine(app, "libtorch_cpu.so"));
        string root = MakeLibTorch("libtorch", "2.10.0+cpu");
        var (code, lines, text) = RunHost(Path.Combine(app, Path.GetFileName(HostDll())), (TorchRuntime.LibTorchVariable, root));
        Assert.True(code == 3, text);
        Assert.Contains($"TorchSharp loaded a second one: {Path.Combine(app, "libtorch_cpu.so")}", lines["error"].Single());
    }

    [Fact]
    public void SymbolCheck_FindsEveryImport_InLibTorch210_AndReportsWhatAnOldOneLacks()
    {
        string sharp = Directory.EnumerateFiles(AppContext.BaseDirectory, GlibcxxWeakVersionPatch.LibraryFileName, SearchOption.AllDirectories).First();
        var needed = ElfDynamicSymbols.NeededUnversioned(sharp);
        Assert.True(needed.Count > 1000, $"{needed.Count} imports");   // 1,204 for TorchSharp 0.107.0 (nm -D)
        Assert.Contains("_ZN2at13globalContextEv", ElfDynamicSymbols.Defined(Path.Combine(OwnLibTorchFolder(), "libtorch_cpu.so")));
        var own = LibTorchInstall.FromDirectory(OwnLibTorchFolder());
        Assert.Empty(own.MissingSymbols(sharp));
        const string debian = "/usr/lib/python3/dist-packages/torch/lib";   // python3-torch 1.13, where installed
        if (Directory.Exists(debian)) Assert.True(LibTorchInstall.FromDirectory(debian).MissingSymbols(sharp).Count > 100);
    }

    [Fact]
    public void Version_IsReadFromTorchVersionPy_AndCheckedAgainst210()
    {
        string lib = Path.Combine(_root, "site-packages", "torch", "lib");
        Directory.CreateDirectory(lib);
        File.WriteAllText(Path.Combine(lib, "..", "version.py"),
            "from typing import Optional\n__version__ = '2.11.0+cu130'\ndebug = False\ncuda: Optional[str] = '13.0'\n");
        Assert.Equal(("2.11.0+cu130", Path.GetFullPath(Path.Combine(lib, "..", "version.py")), "13.0"), LibTorchInstall.ReadVersion(lib));
        LibTorchInstall.CheckVersion("2.10.0", "test", "here");
        LibTorchInstall.CheckVersion("2.11.0+cu130", "test", "here");
        var e = Assert.Throws<InvalidOperationException>(() => LibTorchInstall.CheckVersion("1.13.0a0", "test", "here"));
        Assert.Contains(LibTorchInstall.PipCommand, e.Message);
        Assert.StartsWith(LibTorchInstall.ExpectedVersion + ".", TorchSharp.torch.__version__);   // "2.10.0.0"
    }
}
