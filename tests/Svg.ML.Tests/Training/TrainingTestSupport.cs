using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Training;

/// <summary>A fresh directory under the system temp folder, deleted on dispose.</summary>
sealed class TempDirectory : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "svgml-training-" + Guid.NewGuid().ToString("N"));

    public TempDirectory() => Directory.CreateDirectory(Path);

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

static class TrainingAssert
{
    /// <summary>True when both tensors have the same shape, dtype and bytes.</summary>
    public static bool BitwiseEqual(Tensor a, Tensor b)
    {
        if (a.dtype != b.dtype || !a.shape.SequenceEqual(b.shape)) return false;
        using var ca = a.detach().cpu().contiguous();
        using var cb = b.detach().cpu().contiguous();
        return ca.bytes.SequenceEqual(cb.bytes);
    }

    /// <summary>Asserts two modules' state dicts are bitwise equal, naming the first differing entry.</summary>
    public static void ModulesBitwiseEqual(nn.Module expected, nn.Module actual)
    {
        var a = expected.state_dict();
        var b = actual.state_dict();
        Xunit.Assert.Equal(a.Keys.OrderBy(k => k, StringComparer.Ordinal), b.Keys.OrderBy(k => k, StringComparer.Ordinal));
        foreach (var (k, t) in a)
            Xunit.Assert.True(BitwiseEqual(t, b[k]), $"'{k}' differs");
    }
}

/// <summary>
/// Training tests that compare runs bitwise use the global torch generator (module initialisation, dropout, mask
/// draws): they run alone, after the parallel tests, so that no other test draws from it meanwhile.
/// </summary>
[Xunit.CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialTrainingCollection
{
    public const string Name = "Training (serial: global torch generator)";
}
