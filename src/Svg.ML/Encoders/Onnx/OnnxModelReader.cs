using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Encoders.Onnx;

/// <summary>ONNX <c>TensorProto.DataType</c> values.</summary>
public enum OnnxDataType
{
    Undefined = 0, Float = 1, UInt8 = 2, Int8 = 3, UInt16 = 4, Int16 = 5, Int32 = 6, Int64 = 7, String = 8, Bool = 9,
    Float16 = 10, Double = 11, UInt32 = 12, UInt64 = 13, Complex64 = 14, Complex128 = 15, BFloat16 = 16,
}

/// <summary>ONNX <c>AttributeProto.AttributeType</c> values.</summary>
public enum OnnxAttributeType
{
    Undefined = 0, Float = 1, Int = 2, String = 3, Tensor = 4, Graph = 5, Floats = 6, Ints = 7, Strings = 8, Tensors = 9,
    Graphs = 10, SparseTensor = 11, SparseTensors = 12, TypeProto = 13, TypeProtos = 14,
}

/// <summary>
/// An ONNX tensor (an initializer or a tensor attribute). Its values are kept as little-endian bytes of
/// <see cref="DataType"/>, whichever of <c>raw_data</c> or the typed <c>*_data</c> fields the file used.
/// </summary>
public sealed class OnnxTensor
{
    public required string Name { get; init; }
    public required long[] Dims { get; init; }
    public required OnnxDataType DataType { get; init; }

    /// <summary>The values as little-endian bytes (element size × element count).</summary>
    public required byte[] RawData { get; init; }

    public long ElementCount => Dims.Aggregate(1L, (a, b) => a * b);

    /// <summary>The values of a float tensor.</summary>
    public float[] ToFloatArray()
    {
        if (DataType != OnnxDataType.Float) throw new InvalidOperationException($"ONNX tensor '{Name}' is {DataType}, not Float.");
        return MemoryMarshal.Cast<byte, float>(RawData).ToArray();
    }

    /// <summary>The values as a CPU TorchSharp tensor of the matching dtype and shape <see cref="Dims"/>.</summary>
    public Tensor ToTensor()
    {
        Runtime.TorchRuntime.EnsureInitialized();
        var type = DataType switch
        {
            OnnxDataType.Float => ScalarType.Float32, OnnxDataType.Double => ScalarType.Float64,
            OnnxDataType.Float16 => ScalarType.Float16, OnnxDataType.BFloat16 => ScalarType.BFloat16,
            OnnxDataType.Int64 => ScalarType.Int64, OnnxDataType.Int32 => ScalarType.Int32,
            OnnxDataType.Int16 => ScalarType.Int16, OnnxDataType.Int8 => ScalarType.Int8,
            OnnxDataType.UInt8 => ScalarType.Byte, OnnxDataType.Bool => ScalarType.Bool,
            _ => throw new NotSupportedException($"ONNX tensor '{Name}': data type {DataType} has no TorchSharp equivalent here."),
        };
        var t = empty(Dims, type);
        if (RawData.Length > 0) t.bytes = RawData;
        return t;
    }

    public override string ToString() => $"{Name} {DataType}[{string.Join(",", Dims)}]";
}

/// <summary>An ONNX node attribute; only the field matching <see cref="Type"/> is meaningful.</summary>
public sealed class OnnxAttribute
{
    public required string Name { get; init; }
    public OnnxAttributeType Type { get; init; }
    public float F { get; init; }
    public long I { get; init; }
    public byte[] S { get; init; } = Array.Empty<byte>();
    public OnnxTensor? T { get; init; }
    public float[] Floats { get; init; } = Array.Empty<float>();
    public long[] Ints { get; init; } = Array.Empty<long>();
    public byte[][] Strings { get; init; } = Array.Empty<byte[]>();

    public string StringValue => System.Text.Encoding.UTF8.GetString(S);

    public override string ToString() => Type switch
    {
        OnnxAttributeType.Float => $"{Name}={F}",
        OnnxAttributeType.Int => $"{Name}={I}",
        OnnxAttributeType.String => $"{Name}='{StringValue}'",
        OnnxAttributeType.Ints => $"{Name}=[{string.Join(",", Ints)}]",
        OnnxAttributeType.Floats => $"{Name}=[{string.Join(",", Floats)}]",
        OnnxAttributeType.Tensor => $"{Name}={T}",
        _ => $"{Name}:{Type}",
    };
}

/// <summary>An ONNX graph node.</summary>
public sealed class OnnxNode
{
    public string Name { get; init; } = "";
    public required string OpType { get; init; }
    public string Domain { get; init; } = "";
    public required IReadOnlyList<string> Inputs { get; init; }
    public required IReadOnlyList<string> Outputs { get; init; }
    public required IReadOnlyDictionary<string, OnnxAttribute> Attributes { get; init; }

    /// <summary>An INTS attribute, or <paramref name="fallback"/> when absent.</summary>
    public long[] GetInts(string name, long[]? fallback = null) =>
        Attributes.TryGetValue(name, out var a) ? a.Ints : fallback ?? throw new KeyNotFoundException($"ONNX node {Describe()}: no attribute '{name}'.");

    /// <summary>An INT attribute, or <paramref name="fallback"/> when absent.</summary>
    public long GetInt(string name, long? fallback = null) =>
        Attributes.TryGetValue(name, out var a) ? a.I : fallback ?? throw new KeyNotFoundException($"ONNX node {Describe()}: no attribute '{name}'.");

    /// <summary>A FLOAT attribute, or <paramref name="fallback"/> when absent.</summary>
    public float GetFloat(string name, float? fallback = null) =>
        Attributes.TryGetValue(name, out var a) ? a.F : fallback ?? throw new KeyNotFoundException($"ONNX node {Describe()}: no attribute '{name}'.");

    /// <summary>A STRING attribute, or <paramref name="fallback"/> when absent.</summary>
    public string GetString(string name, string? fallback = null) =>
        Attributes.TryGetValue(name, out var a) ? a.StringValue : fallback ?? throw new KeyNotFoundException($"ONNX node {Describe()}: no attribute '{name}'.");

    public string Describe() => $"{OpType} '{(Name.Length > 0 ? Name : Outputs.FirstOrDefault())}'";

    public override string ToString() =>
        $"{OpType}({string.Join(", ", Inputs)}) -> {string.Join(", ", Outputs)} {{{string.Join(", ", Attributes.Values)}}}";
}

/// <summary>A graph input or output: name, element type and shape (a dimension is -1 when symbolic or unknown).</summary>
public sealed record OnnxValueInfo(string Name, OnnxDataType ElementType, long[] Shape);

/// <summary>An ONNX graph: nodes in file (topological) order, initializers by name, inputs and outputs.</summary>
public sealed class OnnxGraph
{
    public string Name { get; init; } = "";
    public required IReadOnlyList<OnnxNode> Nodes { get; init; }
    public required IReadOnlyDictionary<string, OnnxTensor> Initializers { get; init; }
    public required IReadOnlyList<OnnxValueInfo> Inputs { get; init; }
    public required IReadOnlyList<OnnxValueInfo> Outputs { get; init; }

    /// <summary>The node producing the value <paramref name="name"/>, or null for graph inputs and initializers.</summary>
    public OnnxNode? Producer(string name) => Nodes.FirstOrDefault(n => n.Outputs.Contains(name));

    /// <summary>The nodes consuming the value <paramref name="name"/>, in graph order.</summary>
    public IEnumerable<OnnxNode> Consumers(string name) => Nodes.Where(n => n.Inputs.Contains(name));
}

/// <summary>An ONNX model: header fields and the main graph.</summary>
public sealed class OnnxModel
{
    public long IrVersion { get; init; }
    public string ProducerName { get; init; } = "";
    public string ProducerVersion { get; init; } = "";
    /// <summary>Operator-set imports: domain ("" for the default ONNX domain) → version.</summary>
    public required IReadOnlyDictionary<string, long> OpsetImports { get; init; }
    public required OnnxGraph Graph { get; init; }
}

/// <summary>
/// Reads ONNX model files (<c>onnx.proto</c> <c>ModelProto</c>) with a hand-written protobuf wire reader: graph nodes
/// (op type, inputs, outputs, attributes) and initializers (dims, data type, <c>raw_data</c> or typed data).
/// Enough to take the weights and structure of a model into TorchSharp; it runs nothing.
/// External-data tensors, sparse initializers and sub-graph attributes are not supported (reported or skipped).
/// </summary>
public static class OnnxModelReader
{
    /// <summary>Reads the model at <paramref name="path"/>.</summary>
    public static OnnxModel Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"ONNX model not found: {path}", path);
        byte[] bytes = File.ReadAllBytes(path);
        try { return Read(bytes); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
    }

    /// <summary>Reads a serialized <c>ModelProto</c>.</summary>
    public static OnnxModel Read(ReadOnlySpan<byte> bytes)
    {
        var r = new ProtoWireReader(bytes);
        long ir = 0; string producer = "", producerVersion = "";
        var opsets = new Dictionary<string, long>();
        OnnxGraph? graph = null;
        while (!r.End)
        {
            var (field, wt) = r.ReadTag();
            switch (field)
            {
                case 1 when wt == 0: ir = r.ReadInt64(); break;
                case 2 when wt == 2: producer = r.ReadString(); break;
                case 3 when wt == 2: producerVersion = r.ReadString(); break;
                case 7 when wt == 2: graph = ReadGraph(r.ReadBytes()); break;
                case 8 when wt == 2:
                    var (domain, version) = ReadOpset(r.ReadBytes());
                    opsets[domain] = version;
                    break;
                default: r.Skip(wt); break;
            }
        }
        if (graph is null) throw new InvalidDataException("not an ONNX model: no graph.");
        return new OnnxModel { IrVersion = ir, ProducerName = producer, ProducerVersion = producerVersion, OpsetImports = opsets, Graph = graph };
    }

    static (string, long) ReadOpset(ReadOnlySpan<byte> bytes)
    {
        var r = new ProtoWireReader(bytes);
        string domain = ""; long version = 0;
        while (!r.End)
        {
            var (field, wt) = r.ReadTag();
            if (field == 1 && wt == 2) domain = r.ReadString();
            else if (field == 2 && wt == 0) version = r.ReadInt64();
            else r.Skip(wt);
        }
        return (domain, version);
    }

    static OnnxGraph ReadGraph(ReadOnlySpan<byte> bytes)
    {
        var r = new ProtoWireReader(bytes);
        var nodes = new List<OnnxNode>();
        var inits = new Dictionary<string, OnnxTensor>();
        var inputs = new List<OnnxValueInfo>();
        var outputs = new List<OnnxValueInfo>();
        string name = "";
        while (!r.End)
        {
            var (field, wt) = r.ReadTag();
            switch (field)
            {
                case 1 when wt == 2: nodes.Add(ReadNode(r.ReadBytes())); break;
                case 2 when wt == 2: name = r.ReadString(); break;
                case 5 when wt == 2:
                    var t = ReadTensor(r.ReadBytes());
                    inits[t.Name] = t;
                    break;
                case 11 when wt == 2: inputs.Add(ReadValueInfo(r.ReadBytes())); break;
                case 12 when wt == 2: outputs.Add(ReadValueInfo(r.ReadBytes())); break;
                default: r.Skip(wt); break;
            }
        }
        // Older IR versions list initializers among the graph inputs; keep only the real inputs.
        inputs.RemoveAll(i => inits.ContainsKey(i.Name));
        return new OnnxGraph { Name = name, Nodes = nodes, Initializers = inits, Inputs = inputs, Outputs = outputs };
    }

    static OnnxNode ReadNode(ReadOnlySpan<byte> bytes)
    {
        var r = new ProtoWireReader(bytes);
        var inputs = new List<string>(); var outputs = new List<string>();
        var attrs = new Dictionary<string, OnnxAttribute>();
        string name = "", opType = "", domain = "";
        while (!r.End)
        {
            var (field, wt) = r.ReadTag();
            switch (field)
            {
                case 1 when wt == 2: inputs.Add(r.ReadString()); break;
                case 2 when wt == 2: outputs.Add(r.ReadString()); break;
                case 3 when wt == 2: name = r.ReadString(); break;
                case 4 when wt == 2: opType = r.ReadString(); break;
                case 5 when wt == 2:
                    var a = ReadAttribute(r.ReadBytes());
                    attrs[a.Name] = a;
                    break;
                case 7 when wt == 2: domain = r.ReadString(); break;
                default: r.Skip(wt); break;
            }
        }
        return new OnnxNode { Name = name, OpType = opType, Domain = domain, Inputs = inputs, Outputs = outputs, Attributes = attrs };
    }

    static OnnxAttribute ReadAttribute(ReadOnlySpan<byte> bytes)
    {
        var r = new ProtoWireReader(bytes);
        string name = ""; int type = 0; float f = 0; long i = 0; byte[] s = Array.Empty<byte>(); OnnxTensor? t = null;
        var floats = new List<float>(); var ints = new List<long>(); var strings = new List<byte[]>();
        while (!r.End)
        {
            var (field, wt) = r.ReadTag();
            switch (field)
            {
                case 1 when wt == 2: name = r.ReadString(); break;
                case 2 when wt == 5: f = r.ReadFloat(); break;
                case 3 when wt == 0: i = r.ReadInt64(); break;
                case 4 when wt == 2: s = r.ReadBytes().ToArray(); break;
                case 5 when wt == 2: t = ReadTensor(r.ReadBytes()); break;
                case 7: r.ReadRepeatedFloat(wt, floats); break;
                case 8: r.ReadRepeatedInt64(wt, ints); break;
                case 9 when wt == 2: strings.Add(r.ReadBytes().ToArray()); break;
                case 20 when wt == 0: type = (int)r.ReadInt64(); break;
                default: r.Skip(wt); break;
            }
        }
        // IR < 2 files may omit the type; infer it from the populated field.
        if (type == 0)
            type = ints.Count > 0 ? 7 : floats.Count > 0 ? 6 : strings.Count > 0 ? 8 : t is not null ? 4 : s.Length > 0 ? 3 : 0;
        return new OnnxAttribute
        {
            Name = name, Type = (OnnxAttributeType)type, F = f, I = i, S = s, T = t,
            Floats = floats.ToArray(), Ints = ints.ToArray(), Strings = strings.ToArray(),
        };
    }

    static OnnxValueInfo ReadValueInfo(ReadOnlySpan<byte> bytes)
    {
        var r = new ProtoWireReader(bytes);
        string name = ""; var elem = OnnxDataType.Undefined; var shape = new List<long>();
        while (!r.End)
        {
            var (field, wt) = r.ReadTag();
            if (field == 1 && wt == 2) name = r.ReadString();
            else if (field == 2 && wt == 2)
            {
                // TypeProto { tensor_type = 1: Tensor { elem_type = 1; shape = 2: TensorShapeProto { dim = 1 } } }
                var tr = new ProtoWireReader(r.ReadBytes());
                while (!tr.End)
                {
                    var (tf, twt) = tr.ReadTag();
                    if (tf != 1 || twt != 2) { tr.Skip(twt); continue; }
                    var tt = new ProtoWireReader(tr.ReadBytes());
                    while (!tt.End)
                    {
                        var (ef, ewt) = tt.ReadTag();
                        if (ef == 1 && ewt == 0) elem = (OnnxDataType)tt.ReadInt64();
                        else if (ef == 2 && ewt == 2)
                        {
                            var sr = new ProtoWireReader(tt.ReadBytes());
                            while (!sr.End)
                            {
                                var (sf, swt) = sr.ReadTag();
                                if (sf != 1 || swt != 2) { sr.Skip(swt); continue; }
                                var dr = new ProtoWireReader(sr.ReadBytes());
                                long dim = -1;
                                while (!dr.End)
                                {
                                    var (df, dwt) = dr.ReadTag();
                                    if (df == 1 && dwt == 0) dim = dr.ReadInt64();
                                    else dr.Skip(dwt);
                                }
                                shape.Add(dim);
                            }
                        }
                        else tt.Skip(ewt);
                    }
                }
            }
            else r.Skip(wt);
        }
        return new OnnxValueInfo(name, elem, shape.ToArray());
    }

    static OnnxTensor ReadTensor(ReadOnlySpan<byte> bytes)
    {
        var r = new ProtoWireReader(bytes);
        var dims = new List<long>();
        int dataType = 0; string name = "";
        byte[]? raw = null;
        var floatData = new List<float>(); var int32Data = new List<long>(); var int64Data = new List<long>();
        var doubleData = new List<double>(); var uint64Data = new List<long>();
        bool external = false;
        while (!r.End)
        {
            var (field, wt) = r.ReadTag();
            switch (field)
            {
                case 1: r.ReadRepeatedInt64(wt, dims); break;
                case 2 when wt == 0: dataType = (int)r.ReadInt64(); break;
                case 4: r.ReadRepeatedFloat(wt, floatData); break;
                case 5: r.ReadRepeatedInt64(wt, int32Data); break;
                case 7: r.ReadRepeatedInt64(wt, int64Data); break;
                case 8 when wt == 2: name = r.ReadString(); break;
                case 9 when wt == 2: raw = r.ReadBytes().ToArray(); break;
                case 10: r.ReadRepeatedDouble(wt, doubleData); break;
                case 11: r.ReadRepeatedInt64(wt, uint64Data); break;
                case 14 when wt == 0: external = r.ReadInt64() == 1; break;
                default: r.Skip(wt); break;
            }
        }
        if (external) throw new NotSupportedException($"ONNX tensor '{name}' keeps its data in an external file; not supported.");
        var type = (OnnxDataType)dataType;
        long count = dims.Aggregate(1L, (a, b) => a * b);
        int size = ElementSize(type, name);
        raw ??= type switch
        {
            OnnxDataType.Float => MemoryMarshal.AsBytes(CollectionsMarshal.AsSpan(floatData)).ToArray(),
            OnnxDataType.Double => MemoryMarshal.AsBytes(CollectionsMarshal.AsSpan(doubleData)).ToArray(),
            OnnxDataType.Int64 => MemoryMarshal.AsBytes(CollectionsMarshal.AsSpan(int64Data)).ToArray(),
            OnnxDataType.UInt64 => MemoryMarshal.AsBytes(CollectionsMarshal.AsSpan(uint64Data)).ToArray(),
            OnnxDataType.UInt32 => uint64Data.SelectMany(v => BitConverter.GetBytes((uint)v)).ToArray(),
            OnnxDataType.Int32 => int32Data.SelectMany(v => BitConverter.GetBytes((int)v)).ToArray(),
            OnnxDataType.Int16 or OnnxDataType.UInt16 or OnnxDataType.Float16 or OnnxDataType.BFloat16 =>
                int32Data.SelectMany(v => BitConverter.GetBytes((ushort)v)).ToArray(),
            OnnxDataType.Int8 or OnnxDataType.UInt8 or OnnxDataType.Bool => int32Data.Select(v => (byte)v).ToArray(),
            _ => Array.Empty<byte>(),
        };
        if (raw.LongLength != count * size)
            throw new InvalidDataException($"ONNX tensor '{name}' ({type}[{string.Join(",", dims)}]): {raw.LongLength} data bytes, expected {count * size}.");
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("ONNX raw data is little-endian; big-endian hosts are not supported.");
        return new OnnxTensor { Name = name, Dims = dims.ToArray(), DataType = type, RawData = raw };
    }

    static int ElementSize(OnnxDataType t, string name) => t switch
    {
        OnnxDataType.Double or OnnxDataType.Int64 or OnnxDataType.UInt64 or OnnxDataType.Complex64 => 8,
        OnnxDataType.Float or OnnxDataType.Int32 or OnnxDataType.UInt32 => 4,
        OnnxDataType.Float16 or OnnxDataType.BFloat16 or OnnxDataType.Int16 or OnnxDataType.UInt16 => 2,
        OnnxDataType.Int8 or OnnxDataType.UInt8 or OnnxDataType.Bool => 1,
        OnnxDataType.Complex128 => 16,
        _ => throw new NotSupportedException($"ONNX tensor '{name}': data type {t} is not supported."),
    };
}
