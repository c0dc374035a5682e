using Svg.ML.Runtime;
using TorchSharp;
using Xunit;

namespace Svg.ML.Tests.Runtime;

public class TorchRuntimeTests
{
    /// <summary>On a fresh clone of the repo, TorchSharp must load and compute with no manual step.</summary>
    [Fact]
    public void Torch_InitialisesAndComputes_OnThisMachine()
    {
        TorchRuntime.EnsureInitialized();
        using var a = torch.arange(6, dtype: torch.float32).reshape(2, 3);
        using var b = a.matmul(a.T);
        Assert.Equal(new float[] { 5, 14, 14, 50 }, b.data<float>().ToArray());
    }

    static string PackagedLibrary()
    {
        string root = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
                      ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string path = Path.Combine(root, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", GlibcxxWeakVersionPatch.LibraryFileName);
        Assert.True(File.Exists(path), $"TorchSharp's native library not found at {path}");
        return path;
    }

    [Fact]
    public void TorchNativePatch_FlipsOnlyTheWeakBit_AndIsIdempotent()
    {
        string original = PackagedLibrary();
        string copy = Path.Combine(Path.GetTempPath(), $"svgml-elf-{Guid.NewGuid():N}.so");
        File.Copy(original, copy);
        try
        {
            byte[] before = File.ReadAllBytes(copy);
            int flags = GlibcxxWeakVersionPatch.FindVersionNeedFlags(before, GlibcxxWeakVersionPatch.MissingVersion);
            Assert.True(flags > 0);
            Assert.False(GlibcxxWeakVersionPatch.IsWeak(copy));

            Assert.True(GlibcxxWeakVersionPatch.PatchFile(copy));
            Assert.True(GlibcxxWeakVersionPatch.IsWeak(copy));
            byte[] after = File.ReadAllBytes(copy);
            var changed = Enumerable.Range(0, before.Length).Where(i => before[i] != after[i]).ToArray();
            Assert.Equal(new[] { flags }, changed);               // one byte, the low byte of vna_flags
            Assert.Equal(before[flags] | 2, after[flags]);

            Assert.False(GlibcxxWeakVersionPatch.PatchFile(copy)); // idempotent
            Assert.Equal(after, File.ReadAllBytes(copy));
        }
        finally { File.Delete(copy); }
    }

    [Fact]
    public void TorchNativePatch_NeverEditsTheNuGetCache()
    {
        TorchRuntime.EnsureInitialized();
        Assert.False(GlibcxxWeakVersionPatch.IsWeak(PackagedLibrary()));
        Assert.DoesNotContain(TorchRuntime.NativeFixLog, l => l.Contains("/.nuget/packages/") && l.EndsWith("patched"));
    }

    [Fact]
    public void TorchNativePatch_RejectsNonElfFiles()
    {
        Assert.Throws<InvalidDataException>(() => GlibcxxWeakVersionPatch.FindVersionNeedFlags(new byte[100], "X"));
    }

    /// <summary>Notebook hosts: TorchSharp.dll inside a package folder gets its LibTorchSharp copied into the "cpu"
    /// consolidation folder (which TorchRuntime may patch); the package's own file is never a shadow copy.</summary>
    [Fact]
    public void ShadowCopy_SeedsTheConsolidationFolder_OnlyForAPackageFolder()
    {
        string root = Path.Combine(Path.GetTempPath(), $"svgml-shadow-{Guid.NewGuid():N}");
        string package = Path.Combine(root, "torchsharp", "0.107.0");
        string native = Path.Combine(package, "runtimes", "linux-x64", "native");
        string lib = Path.Combine(package, "lib", "net8.0");
        Directory.CreateDirectory(native);
        Directory.CreateDirectory(lib);
        File.Copy(PackagedLibrary(), Path.Combine(native, GlibcxxWeakVersionPatch.LibraryFileName));
        try
        {
            Assert.Null(TorchSharpShadowCopy.Seed(lib));                 // no .nupkg.metadata / .nuspec: not a package
            File.WriteAllText(Path.Combine(package, ".nupkg.metadata"), "{}");
            string? seeded = TorchSharpShadowCopy.Seed(lib);
            Assert.Equal(Path.Combine(lib, "cpu", GlibcxxWeakVersionPatch.LibraryFileName), seeded);
            Assert.Equal(File.ReadAllBytes(PackagedLibrary()), File.ReadAllBytes(seeded!));
            Assert.Null(TorchSharpShadowCopy.Seed(lib));                 // already there: left as it is
            Assert.True(TorchSharpShadowCopy.IsShadowCopy(seeded!, lib));
            Assert.False(TorchSharpShadowCopy.IsShadowCopy(Path.Combine(native, GlibcxxWeakVersionPatch.LibraryFileName), lib));
            Assert.Equal(new[] { Path.Combine(lib, "cpu") }, TorchSharpShadowCopy.Folders(lib));
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}
