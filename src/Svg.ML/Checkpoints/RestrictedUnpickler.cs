using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Text;
using static TorchSharp.torch;

namespace Svg.ML.Checkpoints;

/// <summary>
/// An inert interpreter for the pickle format (protocols 0–5). It builds only data — numbers, strings, tuples,
/// lists, <see cref="PickleDict"/>, <see cref="PickleSet"/>, <see cref="TensorRef"/>, <see cref="PickleObject"/>
/// records — and never imports or calls anything. Every global the pickle names (<c>GLOBAL</c>,
/// <c>STACK_GLOBAL</c>, <c>INST</c>) is checked against a <see cref="PickleAllowList"/> when it is read, and
/// <c>REDUCE</c>/<c>NEWOBJ</c>/<c>OBJ</c> may only apply such a checked global, so a malicious pickle is refused
/// with an <see cref="UnsafeCheckpointException"/> naming the global.
/// </summary>
sealed class RestrictedUnpickler
{
    // pickle's Python 2 -> 3 renames (Lib/_compat_pickle.py), applied for protocols < 3 like pickle.Unpickler does,
    // so that e.g. "__builtin__ eval" is checked as builtins.eval.
    static readonly Dictionary<string, string> ModuleRenames = new()
    {
        ["__builtin__"] = "builtins", ["copy_reg"] = "copyreg", ["exceptions"] = "builtins", ["UserDict"] = "collections",
        ["UserList"] = "collections", ["UserString"] = "collections", ["cPickle"] = "pickle", ["commands"] = "subprocess",
        ["cStringIO"] = "io", ["StringIO"] = "io", ["thread"] = "_thread", ["Queue"] = "queue", ["urllib2"] = "urllib.request",
        ["_winreg"] = "winreg", ["dummy_thread"] = "_dummy_thread", ["repr"] = "reprlib", ["__main__"] = "__main__",
    };

    static readonly Dictionary<(string, string), (string, string)> NameRenames = new()
    {
        [("__builtin__", "xrange")] = ("builtins", "range"), [("__builtin__", "reduce")] = ("functools", "reduce"),
        [("__builtin__", "intern")] = ("sys", "intern"), [("__builtin__", "unichr")] = ("builtins", "chr"),
        [("__builtin__", "unicode")] = ("builtins", "str"), [("__builtin__", "long")] = ("builtins", "int"),
        [("__builtin__", "basestring")] = ("builtins", "str"), [("itertools", "izip")] = ("builtins", "zip"),
        [("itertools", "imap")] = ("builtins", "map"), [("itertools", "ifilter")] = ("builtins", "filter"),
        [("UserDict", "IterableUserDict")] = ("collections", "UserDict"), [("exceptions", "StandardError")] = ("builtins", "Exception"),
    };

    static readonly HashSet<string> DictTypes =
    [
        "builtins.dict", "collections.OrderedDict", "collections.defaultdict", "collections.Counter",
        "pytorch_lightning.utilities.parsing.AttributeDict", "lightning.pytorch.utilities.parsing.AttributeDict",
        "lightning_fabric.utilities.data.AttributeDict", "lightning.fabric.utilities.data.AttributeDict",
    ];

    readonly byte[] _buf;
    int _pos;
    readonly string _source;
    readonly PickleAllowList _allow;
    readonly Func<object?, object?>? _persistentLoad;
    readonly List<object?> _stack = new();
    readonly List<int> _marks = new();
    readonly Dictionary<long, object?> _memo = new();
    int _proto;

    /// <summary>The allowed globals the pickle referenced (<c>module.name</c>).</summary>
    public SortedSet<string> GlobalsSeen { get; } = new(StringComparer.Ordinal);

    public RestrictedUnpickler(byte[] pickle, string source, PickleAllowList allow, Func<object?, object?>? persistentLoad)
    {
        _buf = pickle; _source = source; _allow = allow; _persistentLoad = persistentLoad;
    }

    /// <summary>Runs the pickle to its <c>STOP</c> and returns the top value.</summary>
    public object? Load()
    {
        try { return Run(); }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentException or InvalidCastException or DecoderFallbackException)
        {
            throw new CheckpointFormatException(_source, $"corrupt pickle (data.pkl, byte {_pos}): {e.Message}", e);
        }
    }

    object? Run()
    {
        while (true)
        {
            byte op = ReadByte();
            switch (op)
            {
                case 0x80: _proto = ReadByte(); if (_proto > 5) Fail($"unsupported pickle protocol {_proto}"); break; // PROTO
                case 0x95: ReadUInt64(); break;                                   // FRAME (the framed data follows inline)
                case (byte)'.': return Pop();                                     // STOP
                case (byte)'(': _marks.Add(_stack.Count); break;                  // MARK
                case (byte)'0':                                                   // POP
                    if (_marks.Count > 0 && _marks[^1] == _stack.Count) _marks.RemoveAt(_marks.Count - 1); else Pop();
                    break;
                case (byte)'1': PopMark(); break;                                 // POP_MARK
                case (byte)'2': Push(Peek()); break;                              // DUP
                case (byte)'N': Push(null); break;                                // NONE
                case 0x88: Push(true); break;                                     // NEWTRUE
                case 0x89: Push(false); break;                                    // NEWFALSE
                case (byte)'I': Push(ParseIntLine(ReadLine())); break;            // INT
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break; // BININT
                case (byte)'K': Push((long)ReadByte()); break;                    // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break; // BININT2
                case (byte)'L': Push(Normalize(BigInteger.Parse(ReadLine().TrimEnd('L'), CultureInfo.InvariantCulture))); break; // LONG
                case 0x8a: Push(ReadLong(ReadByte())); break;                     // LONG1
                case 0x8b: Push(ReadLong(ReadLength32())); break;                 // LONG4
                case (byte)'F': Push(double.Parse(ReadLine(), NumberStyles.Float, CultureInfo.InvariantCulture)); break; // FLOAT
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break; // BINFLOAT
                case (byte)'S': Push(ParseQuotedString(ReadLine())); break;       // STRING
                case (byte)'T': Push(Encoding.UTF8.GetString(Take(ReadLength32()))); break; // BINSTRING
                case (byte)'U': Push(Encoding.UTF8.GetString(Take(ReadByte()))); break;     // SHORT_BINSTRING
                case (byte)'V': Push(DecodeRawUnicodeEscape(ReadLine())); break;  // UNICODE
                case (byte)'X': Push(Encoding.UTF8.GetString(Take(ReadLength32()))); break; // BINUNICODE
                case 0x8c: Push(Encoding.UTF8.GetString(Take(ReadByte()))); break;          // SHORT_BINUNICODE
                case 0x8d: Push(Encoding.UTF8.GetString(Take(ReadLength64()))); break;      // BINUNICODE8
                case (byte)'B': Push(Take(ReadLength32()).ToArray()); break;      // BINBYTES
                case (byte)'C': Push(Take(ReadByte()).ToArray()); break;          // SHORT_BINBYTES
                case 0x8e: Push(Take(ReadLength64()).ToArray()); break;           // BINBYTES8
                case 0x96: Push(Take(ReadLength64()).ToArray()); break;           // BYTEARRAY8
                case (byte)']': Push(new List<object?>()); break;                 // EMPTY_LIST
                case (byte)'l': Push(PopMark()); break;                           // LIST
                case (byte)'a': { var v = Pop(); Append(Peek(), [v]); break; }    // APPEND
                case (byte)'e': { var items = PopMark(); Append(Peek(), items); break; } // APPENDS
                case (byte)')': Push(Array.Empty<object?>()); break;              // EMPTY_TUPLE
                case (byte)'t': Push(PopMark().ToArray()); break;                 // TUPLE
                case 0x85: Push(new[] { Pop() }); break;                          // TUPLE1
                case 0x86: { var b = Pop(); var a = Pop(); Push(new[] { a, b }); break; } // TUPLE2
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new[] { a, b, c }); break; } // TUPLE3
                case (byte)'}': Push(new PickleDict("builtins.dict")); break;    // EMPTY_DICT
                case (byte)'d': { var d = new PickleDict("builtins.dict"); SetItems(d, PopMark()); Push(d); break; } // DICT
                case (byte)'s': { var v = Pop(); var k = Pop(); SetItems(Peek(), [k, v]); break; } // SETITEM
                case (byte)'u': { var items = PopMark(); SetItems(Peek(), items); break; } // SETITEMS
                case 0x8f: Push(new PickleSet()); break;                          // EMPTY_SET
                case 0x90: { var items = PopMark(); AddItems(Peek(), items); break; } // ADDITEMS
                case 0x91: { var s = new PickleSet { Frozen = true }; s.Items.AddRange(PopMark()); Push(s); break; } // FROZENSET
                case (byte)'c': { var module = ReadLine(); var name = ReadLine(); Push(Global(module, name)); break; } // GLOBAL
                case 0x93:                                                        // STACK_GLOBAL
                {
                    var name = Pop(); var module = Pop();
                    if (module is not string m || name is not string n) { Fail("STACK_GLOBAL needs two strings"); return null; }
                    Push(Global(m, n));
                    break;
                }
                case (byte)'i':                                                   // INST
                {
                    var module = ReadLine(); var name = ReadLine();
                    var g = Global(module, name);
                    Push(Call(g, PopMark().ToArray(), "INST"));
                    break;
                }
                case (byte)'o':                                                   // OBJ
                {
                    var items = PopMark();
                    if (items.Count == 0) Fail("OBJ without a class");
                    Push(Call(items[0], items.Skip(1).ToArray(), "OBJ"));
                    break;
                }
                case (byte)'R': { var args = Pop(); var f = Pop(); Push(Call(f, args, "REDUCE")); break; } // REDUCE
                case 0x81: { var args = Pop(); var cls = Pop(); Push(NewObject(cls, args)); break; }       // NEWOBJ
                case 0x92: { Pop(); var args = Pop(); var cls = Pop(); Push(NewObject(cls, args)); break; } // NEWOBJ_EX (kwargs dropped)
                case (byte)'b': { var state = Pop(); Build(Peek(), state); break; } // BUILD
                case (byte)'p': _memo[ParseLong(ReadLine())] = Peek(); break;     // PUT
                case (byte)'q': _memo[ReadByte()] = Peek(); break;                // BINPUT
                case (byte)'r': _memo[BinaryPrimitives.ReadUInt32LittleEndian(Take(4))] = Peek(); break; // LONG_BINPUT
                case 0x94: _memo[_memo.Count] = Peek(); break;                    // MEMOIZE
                case (byte)'g': Push(MemoGet(ParseLong(ReadLine()))); break;      // GET
                case (byte)'h': Push(MemoGet(ReadByte())); break;                 // BINGET
                case (byte)'j': Push(MemoGet(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break; // LONG_BINGET
                case (byte)'P': Push(PersistentLoad(ReadLine())); break;          // PERSID
                case (byte)'Q': Push(PersistentLoad(Pop())); break;               // BINPERSID
                case 0x82 or 0x83 or 0x84: Fail("extension-registry codes (EXT1/2/4) are not supported"); break;
                case 0x97 or 0x98: Fail("out-of-band buffers (protocol 5) are not supported"); break;
                default: Fail($"unknown pickle opcode 0x{op:x2}"); break;
            }
        }
    }

    // ---- globals and calls -------------------------------------------------------------------------------------

    PickleGlobal Global(string module, string name)
    {
        if (_proto < 3)
        {
            if (NameRenames.TryGetValue((module, name), out var mapped)) (module, name) = mapped;
            else if (ModuleRenames.TryGetValue(module, out var m)) module = m;
        }
        if (module.Length == 0 || name.Length == 0) Fail("a global with an empty module or name");
        if (_allow.Check(module, name, out bool canBeAllowed) is { } why)
            throw new UnsafeCheckpointException(_source, module + "." + name, why, canBeAllowed);
        GlobalsSeen.Add(module + "." + name);
        return new PickleGlobal(module, name);
    }

    object? Call(object? callable, object? argsValue, string op)
    {
        if (callable is not PickleGlobal g)
        {
            Fail($"{op} applied to {PickleValue.Describe(callable)}; only an allowed global may be called");
            return null;
        }
        if (argsValue is not object?[] args)
        {
            Fail($"{op} of {g.FullName} with {PickleValue.Describe(argsValue)} instead of an argument tuple");
            return null;
        }
        switch (g.FullName)
        {
            case "torch._utils._rebuild_tensor":
            case "torch._utils._rebuild_tensor_v2":
                return RebuildTensor(g, args, dtypeArg: -1);
            case "torch._utils._rebuild_tensor_v3":
                return RebuildTensor(g, args, dtypeArg: 6);
            case "torch._utils._rebuild_parameter":
            case "torch._utils._rebuild_parameter_with_state":
                if (args.Length < 1 || args[0] is not TensorRef) Fail($"{g.FullName} without a tensor");
                return args[0];
            case "torch.Size":
                return args.Length == 0 ? Array.Empty<object?>() : args[0] is object?[] t ? t : AsList(args[0], "torch.Size").ToArray();
            case "_codecs.encode":
                return Encode(args);
            case "builtins.bytes":
            case "builtins.bytearray":
                if (args.Length == 0) return Array.Empty<byte>();
                if (args[0] is byte[] b) return b;
                if (args[0] is string && args.Length == 2) return Encode(args);
                return AsList(args[0], g.FullName).Select(x => PickleValue.TryGetLong(x, out var v) && v is >= 0 and <= 255 ? (byte)v : throw Error("bytes() of a non-byte value")).ToArray();
            case "builtins.set":
            case "builtins.frozenset":
            {
                var s = new PickleSet { Frozen = g.Name == "frozenset" };
                if (args.Length > 0) s.Items.AddRange(AsList(args[0], g.FullName));
                return s;
            }
            case "builtins.list":
                return args.Length == 0 ? new List<object?>() : AsList(args[0], g.FullName).ToList();
            case "builtins.tuple":
                return args.Length == 0 ? Array.Empty<object?>() : AsList(args[0], g.FullName).ToArray();
            case "copyreg._reconstructor":
                if (args.Length < 1) Fail("copyreg._reconstructor without a class");
                return NewObject(args[0], Array.Empty<object?>());
        }
        if (DictTypes.Contains(g.FullName))
        {
            var d = new PickleDict(g.FullName);
            // OrderedDict([(k, v), ...]) (older protocols) or dict(mapping); defaultdict(factory) has no items.
            if (g.FullName != "collections.defaultdict" && args.Length > 0 && args[0] is not null)
            {
                if (args[0] is PickleDict src) foreach (var (k, v) in src) d.Set(k, v);
                else foreach (var pair in AsList(args[0], g.FullName))
                {
                    var kv = AsList(pair, g.FullName).ToList();
                    if (kv.Count != 2) Fail($"{g.FullName} item is not a pair");
                    d.Set(CheckKey(kv[0]), kv[1]);
                }
            }
            return d;
        }
        return new PickleObject(g, args);
    }

    object? NewObject(object? cls, object? argsValue)
    {
        if (cls is not PickleGlobal g) { Fail($"NEWOBJ of {PickleValue.Describe(cls)}; only an allowed class may be instantiated"); return null; }
        var args = argsValue as object?[] ?? Array.Empty<object?>();
        if (DictTypes.Contains(g.FullName)) return new PickleDict(g.FullName);
        return g.FullName switch
        {
            "builtins.list" => new List<object?>(),
            "builtins.set" => new PickleSet(),
            "builtins.frozenset" => new PickleSet { Frozen = true },
            "builtins.tuple" => args.Length > 0 ? AsList(args[0], "tuple").ToArray() : Array.Empty<object?>(),
            _ => new PickleObject(g, args),
        };
    }

    TensorRef RebuildTensor(PickleGlobal g, object?[] args, int dtypeArg)
    {
        if (args.Length < 4) throw Error($"{g.FullName} with {args.Length} arguments");
        if (args[0] is not StorageRef storage) throw Error($"{g.FullName} without a storage (got {PickleValue.Describe(args[0])})");
        if (!PickleValue.TryGetLong(args[1], out long offset) || offset < 0) throw Error($"{g.FullName}: bad storage offset");
        long[] shape = Longs(args[2], "size"), stride = Longs(args[3], "stride");
        if (shape.Length != stride.Length) throw Error($"{g.FullName}: size and stride ranks differ");
        if (shape.Any(s => s < 0) || stride.Any(s => s < 0)) throw Error($"{g.FullName}: negative size or stride");
        var dtype = storage.DType;
        if (dtypeArg >= 0)
        {
            if (args.Length <= dtypeArg || args[dtypeArg] is not PickleGlobal dt) throw Error($"{g.FullName} without a dtype");
            dtype = TorchZip.DTypeFromName(dt.Name) ?? throw Error($"unsupported dtype torch.{dt.Name}");
        }
        return new TensorRef(storage, offset, shape, stride, dtype);
    }

    long[] Longs(object? v, string what) =>
        AsList(v, what).Select(x => PickleValue.TryGetLong(x, out long l) ? l : throw Error($"tensor {what} holds {PickleValue.Describe(x)}")).ToArray();

    byte[] Encode(object?[] args)
    {
        if (args.Length < 1 || args[0] is not string s) throw Error("_codecs.encode without a string");
        string enc = args.Length > 1 && args[1] is string e ? e.ToLowerInvariant() : "utf-8";
        return enc switch
        {
            "latin1" or "latin-1" or "iso-8859-1" or "iso8859-1" => Encoding.Latin1.GetBytes(s),
            "utf-8" or "utf8" => Encoding.UTF8.GetBytes(s),
            "ascii" => Encoding.ASCII.GetBytes(s),
            _ => throw Error($"_codecs.encode with encoding '{enc}'"),
        };
    }

    object? PersistentLoad(object? pid)
    {
        if (_persistentLoad is null) throw Error("a persistent id in a pickle that has no external storages");
        return _persistentLoad(pid);
    }

    // ---- containers --------------------------------------------------------------------------------------------

    void Append(object? target, IEnumerable<object?> items)
    {
        switch (target)
        {
            case List<object?> l: l.AddRange(items); break;
            case PickleObject o: o.ListItems.AddRange(items); break;
            default: Fail($"APPEND to {PickleValue.Describe(target)}"); break;
        }
    }

    void SetItems(object? target, List<object?> kv)
    {
        if (kv.Count % 2 != 0) Fail("SETITEMS with an odd number of values");
        var dict = target switch { PickleDict d => d, PickleObject o => o.DictItems, _ => null };
        if (dict is null) { Fail($"SETITEM on {PickleValue.Describe(target)}"); return; }
        for (int i = 0; i < kv.Count; i += 2) dict.Set(CheckKey(kv[i]), kv[i + 1]);
    }

    void AddItems(object? target, List<object?> items)
    {
        if (target is not PickleSet s) { Fail($"ADDITEMS on {PickleValue.Describe(target)}"); return; }
        s.Items.AddRange(items);
    }

    void Build(object? target, object? state)
    {
        switch (target)
        {
            case PickleObject o: o.State = state; break;
            case PickleDict d: d.Attributes = state; break;
            case PickleSet or List<object?>: break; // a container subclass's attributes: nothing to keep
            default: Fail($"BUILD on {PickleValue.Describe(target)}"); break;
        }
    }

    object? CheckKey(object? key)
    {
        if (key is List<object?> or PickleDict or (PickleSet { Frozen: false })) Fail($"unhashable dict key ({PickleValue.Describe(key)})");
        return key;
    }

    IEnumerable<object?> AsList(object? v, string what) => v switch
    {
        object?[] t => t,
        List<object?> l => l,
        PickleSet s => s.Items,
        _ => throw Error($"{what} expects a sequence, got {PickleValue.Describe(v)}"),
    };

    // ---- stack and memo ----------------------------------------------------------------------------------------

    void Push(object? v) => _stack.Add(v);

    object? Pop()
    {
        int floor = _marks.Count > 0 ? _marks[^1] : 0;
        if (_stack.Count <= floor) Fail("stack underflow");
        var v = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    object? Peek()
    {
        int floor = _marks.Count > 0 ? _marks[^1] : 0;
        if (_stack.Count <= floor) Fail("stack underflow");
        return _stack[^1];
    }

    List<object?> PopMark()
    {
        if (_marks.Count == 0) Fail("MARK expected");
        int m = _marks[^1];
        _marks.RemoveAt(_marks.Count - 1);
        var items = _stack.GetRange(m, _stack.Count - m);
        _stack.RemoveRange(m, _stack.Count - m);
        return items;
    }

    object? MemoGet(long key)
    {
        if (!_memo.TryGetValue(key, out var v)) Fail($"memo key {key} read before it was written");
        return v;
    }

    // ---- raw reading -------------------------------------------------------------------------------------------

    byte ReadByte()
    {
        if (_pos >= _buf.Length) Fail("the pickle ends before STOP (truncated)");
        return _buf[_pos++];
    }

    ReadOnlySpan<byte> Take(long n)
    {
        if (n < 0 || n > _buf.Length - _pos) Fail($"a {n}-byte field runs past the end of the pickle (truncated)");
        var s = _buf.AsSpan(_pos, (int)n);
        _pos += (int)n;
        return s;
    }

    int ReadLength32()
    {
        int n = BinaryPrimitives.ReadInt32LittleEndian(Take(4));
        if (n < 0) Fail("negative length");
        return n;
    }

    long ReadLength64()
    {
        ulong n = ReadUInt64();
        if (n > int.MaxValue) Fail("a field longer than 2 GiB");
        return (long)n;
    }

    ulong ReadUInt64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));

    string ReadLine()
    {
        int end = Array.IndexOf(_buf, (byte)'\n', _pos);
        if (end < 0) Fail("a text field without its newline (truncated)");
        var s = Encoding.UTF8.GetString(_buf, _pos, end - _pos);
        _pos = end + 1;
        return s.EndsWith('\r') ? s[..^1] : s;
    }

    object ReadLong(int n)
    {
        if (n == 0) return 0L;
        return Normalize(new BigInteger(Take(n), isUnsigned: false, isBigEndian: false));
    }

    static object Normalize(BigInteger v) => v >= long.MinValue && v <= long.MaxValue ? (long)v : v;

    object ParseIntLine(string s) => s switch
    {
        "00" => false,
        "01" => true,
        _ => Normalize(BigInteger.Parse(s, CultureInfo.InvariantCulture)),
    };

    long ParseLong(string s) => long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) ? v : throw Error($"bad integer '{s}'");

    string ParseQuotedString(string s)
    {
        if (s.Length < 2 || s[0] != s[^1] || (s[0] != '\'' && s[0] != '"')) throw Error("STRING opcode argument is not quoted");
        var inner = s[1..^1];
        var sb = new StringBuilder();
        for (int i = 0; i < inner.Length; i++)
        {
            char c = inner[i];
            if (c != '\\' || i + 1 >= inner.Length) { sb.Append(c); continue; }
            char e = inner[++i];
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case 'x' when i + 2 < inner.Length:
                    sb.Append((char)Convert.ToInt32(inner.Substring(i + 1, 2), 16)); i += 2; break;
                default: sb.Append(e); break;
            }
        }
        return sb.ToString();
    }

    static string DecodeRawUnicodeEscape(string s)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < s.Length; i++)
        {
            int digits = s[i] == '\\' && i + 1 < s.Length ? s[i + 1] switch { 'u' => 4, 'U' => 8, _ => 0 } : 0;
            if (digits > 0 && i + 1 + digits < s.Length)
            {
                sb.Append(char.ConvertFromUtf32(Convert.ToInt32(s.Substring(i + 2, digits), 16)));
                i += 1 + digits;
            }
            else sb.Append(s[i]);
        }
        return sb.ToString();
    }

    CheckpointFormatException Error(string problem) => new(_source, $"corrupt or unsupported pickle (data.pkl, byte {_pos}): {problem}.");

    void Fail(string problem) => throw Error(problem);
}
