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
}
