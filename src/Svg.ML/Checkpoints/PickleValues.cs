using System.Collections;
using System.Numerics;
using static TorchSharp.torch;

namespace Svg.ML.Checkpoints;

// The inert values the restricted unpickler builds. Python ints become long (BigInteger when wider than 64 bits),
// floats double, str string, bytes byte[], tuples object?[], lists List<object?>, dicts PickleDict, sets PickleSet.
// Nothing here ever runs Python code: a "call" in the pickle only records what would have been called.

/// <summary>A reference to a Python global (<c>module.name</c>), e.g. a class or function named by the pickle.</summary>
public sealed record PickleGlobal(string Module, string Name)
{
    /// <summary><c>module.name</c>.</summary>
    public string FullName => Module + "." + Name;

    /// <inheritdoc/>
    public override string ToString() => FullName;
}

/// <summary>
/// An instance of an allowed class that is not a plain container (for example an <c>argparse.Namespace</c>, an
/// omegaconf node, a numpy scalar): the class, the constructor arguments and the state the pickle recorded.
/// </summary>
public sealed class PickleObject
{
    /// <summary>The class or factory the pickle named.</summary>
    public PickleGlobal Type { get; }

    /// <summary>The recorded constructor arguments.</summary>
    public object?[] Args { get; }

    /// <summary>The <c>BUILD</c> state (usually the instance <c>__dict__</c>), or null.</summary>
    public object? State { get; internal set; }

    /// <summary>Items appended to the object (list subclasses).</summary>
    public List<object?> ListItems { get; } = new();

    /// <summary>Items set on the object (dict subclasses).</summary>
    public PickleDict DictItems { get; } = new("builtins.dict");

    internal PickleObject(PickleGlobal type, object?[] args) { Type = type; Args = args; }

    /// <inheritdoc/>
    public override string ToString() => $"{Type.FullName}(…)";
}

/// <summary>A Python set or frozenset.</summary>
public sealed class PickleSet
{
    /// <summary>The elements, in pickle order.</summary>
    public List<object?> Items { get; } = new();

    /// <summary>True for a frozenset.</summary>
    public bool Frozen { get; internal set; }
}

/// <summary>
/// An ordered Python dict (also <c>OrderedDict</c>, <c>defaultdict</c>, Lightning's <c>AttributeDict</c>, …).
/// Keys are strings, integers, floats, booleans, tuples or null; insertion order is kept.
/// </summary>
public sealed class PickleDict : IEnumerable<KeyValuePair<object?, object?>>
{
    static readonly object NoneKey = new();
    readonly List<object> _keys = new();
    readonly Dictionary<object, object?> _map = new(PickleKeyComparer.Instance);

    /// <summary>The Python type the pickle used (<c>builtins.dict</c>, <c>collections.OrderedDict</c>, …).</summary>
    public string TypeName { get; }

    /// <summary>Instance attributes the pickle set with <c>BUILD</c> (e.g. a state dict's <c>_metadata</c>), or null.</summary>
    public object? Attributes { get; internal set; }

    internal PickleDict(string typeName) { TypeName = typeName; }

    /// <summary>Number of entries.</summary>
    public int Count => _keys.Count;

    /// <summary>The keys in insertion order.</summary>
    public IEnumerable<object?> Keys => _keys.Select(k => ReferenceEquals(k, NoneKey) ? null : k);

    /// <summary>The string keys in insertion order (other keys skipped).</summary>
    public IEnumerable<string> StringKeys => _keys.OfType<string>();

    /// <summary>True when the dict has <paramref name="key"/>.</summary>
    public bool ContainsKey(object? key) => _map.ContainsKey(key ?? NoneKey);

    /// <summary>Looks up <paramref name="key"/>.</summary>
    public bool TryGetValue(object? key, out object? value) => _map.TryGetValue(key ?? NoneKey, out value);

    /// <summary>The value for <paramref name="key"/>; throws <see cref="KeyNotFoundException"/> when absent.</summary>
    public object? this[object? key] => _map[key ?? NoneKey];

    internal void Set(object? key, object? value)
    {
        var k = key ?? NoneKey;
        if (!_map.ContainsKey(k)) _keys.Add(k);
        _map[k] = value;
    }

    /// <inheritdoc/>
    public IEnumerator<KeyValuePair<object?, object?>> GetEnumerator()
    {
        foreach (var k in _keys)
            yield return new(ReferenceEquals(k, NoneKey) ? null : k, _map[k]);
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>One storage of a torch zip archive (the file <c>data/&lt;Key&gt;</c>): element type and count.</summary>
public sealed record StorageRef(string Key, ScalarType DType, long Numel, string Location);

/// <summary>
/// A tensor described by the pickle but not yet read: a strided view into a <see cref="StorageRef"/>.
/// <see cref="TorchCheckpoint.ReadTensor"/> materialises it.
/// </summary>
public sealed record TensorRef(StorageRef Storage, long StorageOffset, long[] Shape, long[] Stride, ScalarType DType)
{
    /// <summary>Number of elements.</summary>
    public long Numel => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Shape as text, e.g. <c>[1,1,392]</c>.</summary>
    public string ShapeText => "[" + string.Join(",", Shape) + "]";
}

/// <summary>Hashing and equality for dict keys: structural for tuples and bytes, by value otherwise.</summary>
sealed class PickleKeyComparer : IEqualityComparer<object>
{
    public static readonly PickleKeyComparer Instance = new();

    public new bool Equals(object? a, object? b)
    {
        if (a is object?[] ta && b is object?[] tb)
            return ta.Length == tb.Length && ta.Zip(tb).All(p => p.First is null ? p.Second is null : p.Second is not null && Equals(p.First, p.Second));
        if (a is byte[] ba && b is byte[] bb) return ba.AsSpan().SequenceEqual(bb);
        return object.Equals(a, b);
    }

    public int GetHashCode(object o) => o switch
    {
        object?[] t => t.Aggregate(17, (h, x) => h * 31 + (x is null ? 0 : GetHashCode(x))),
        byte[] b => b.Aggregate(17, (h, x) => h * 31 + x),
        _ => o.GetHashCode(),
    };
}

/// <summary>Small helpers to read inert pickle values.</summary>
static class PickleValue
{
    public static string Describe(object? v) => v switch
    {
        null => "None",
        string s => $"str '{(s.Length > 40 ? s[..40] + "…" : s)}'",
        long or int or BigInteger => $"int {v}",
        double d => $"float {d}",
        bool b => b ? "True" : "False",
        byte[] b => $"bytes[{b.Length}]",
        object?[] t => $"tuple[{t.Length}]",
        List<object?> l => $"list[{l.Count}]",
        PickleDict d => $"{d.TypeName}[{d.Count}]",
        PickleSet s => $"set[{s.Items.Count}]",
        TensorRef t => $"tensor {t.DType} {t.ShapeText}",
        StorageRef s => $"storage {s.Key}",
        PickleGlobal g => $"global {g.FullName}",
        PickleObject o => $"{o.Type.FullName} object",
        _ => v.GetType().Name,
    };

    public static bool TryGetLong(object? v, out long value)
    {
        switch (v)
        {
            case long l: value = l; return true;
            case int i: value = i; return true;
            case bool b: value = b ? 1 : 0; return true;
            case BigInteger bi when bi >= long.MinValue && bi <= long.MaxValue: value = (long)bi; return true;
            default: value = 0; return false;
        }
    }
}
