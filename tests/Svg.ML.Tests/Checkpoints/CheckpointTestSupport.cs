using Svg.ML.Checkpoints;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Checkpoints;

/// <summary>Paths of the committed fixtures (made by Fixtures/make_fixtures.py) and comparison helpers.</summary>
static class Fixtures
{
    public static string Folder => Path.Combine(Parity.RepoPaths.TestProjectDir, "Checkpoints", "Fixtures");

    public static string Path_(string name) => Path.Combine(Folder, name);

    /// <summary>The tensors a correct loader returns for fixture <paramref name="name"/>, plus the generator's notes.</summary>
    public static SafeTensors.Contents Expected(string name) => SafeTensors.Load(Path.Combine(Folder, name + ".expected.safetensors"));

    /// <summary>Same dtype, same shape and bit-identical values (NaN never occurs in the fixtures).</summary>
    public static bool Same(Tensor a, Tensor b)
    {
        if (a.dtype != b.dtype || !a.shape.SequenceEqual(b.shape)) return false;
        using var eq = a.eq(b).all();
        return eq.item<bool>();
    }

    /// <summary>Same keys (in any order), same dtypes, shapes and bit-identical values.</summary>
    public static void AssertSameTensors(IReadOnlyDictionary<string, Tensor> expected, IReadOnlyDictionary<string, Tensor> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (key, e) in expected)
        {
            var a = actual[key];
            Assert.True(a.dtype == e.dtype, $"{key}: dtype {a.dtype}, expected {e.dtype}");
            Assert.True(a.shape.SequenceEqual(e.shape), $"{key}: shape [{string.Join(",", a.shape)}], expected [{string.Join(",", e.shape)}]");
            Assert.True(a.device_type == DeviceType.CPU, $"{key} is not on the CPU");
            Assert.True(a.is_contiguous(), $"{key} is not contiguous");
            Assert.True(Fixtures.Same(a, e), $"{key}: values differ from what the generator wrote");
        }
    }
}

/// <summary>A temporary folder, deleted at the end of the test.</summary>
sealed class TempFolder : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "svgml-checkpoint-tests-" + Guid.NewGuid().ToString("N"));

    public TempFolder() => Directory.CreateDirectory(Path);

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

/// <summary>
/// A module whose state dict has exactly the given keys and shapes (nested submodules built from the dotted names),
/// to test loading by name without depending on the real model classes.
/// </summary>
sealed class KeyedModule : nn.Module
{
    public KeyedModule(IEnumerable<(string Key, long[] Shape)> entries) : base("keyed")
    {
        foreach (var (key, shape) in entries) Add(this, key.Split('.'), shape);
    }

    public static KeyedModule Like(IReadOnlyDictionary<string, Tensor> weights) =>
        new(weights.Select(kv => (kv.Key, kv.Value.shape)));

    static void Add(nn.Module owner, string[] path, long[] shape)
    {
        if (path.Length == 1)
        {
            owner.register_parameter(path[0], new TorchSharp.Modules.Parameter(zeros(shape)));
            return;
        }
        var child = owner.named_children().FirstOrDefault(c => c.name == path[0]).module;
        if (child is null)
        {
            child = new Node();
            owner.register_module(path[0], child);
        }
        Add(child, path[1..], shape);
    }

    sealed class Node() : nn.Module("node");
}
