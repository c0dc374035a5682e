using System.Buffers.Binary;
using System.Text;

namespace Svg.ML.Encoders.Onnx;

/// <summary>
/// A minimal reader of the protocol-buffers wire format (varint, fixed32, fixed64, length-delimited),
/// enough to walk an ONNX <c>ModelProto</c> without generated code or a protobuf dependency.
/// </summary>
internal ref struct ProtoWireReader
{
    readonly ReadOnlySpan<byte> _data;
    int _pos;

    public ProtoWireReader(ReadOnlySpan<byte> data) { _data = data; _pos = 0; }

    public readonly bool End => _pos >= _data.Length;

    /// <summary>Reads the next tag: field number and wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32).</summary>
    public (int Field, int WireType) ReadTag()
    {
        ulong tag = ReadVarint();
        int field = (int)(tag >> 3);
        if (field <= 0) throw new InvalidDataException($"protobuf: invalid field number {field} at byte {_pos}.");
        return (field, (int)(tag & 7));
    }

    public ulong ReadVarint()
    {
        ulong result = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (_pos >= _data.Length) throw new InvalidDataException("protobuf: truncated varint.");
            byte b = _data[_pos++];
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return result;
        }
        throw new InvalidDataException("protobuf: varint longer than 10 bytes.");
    }

    public long ReadInt64() => (long)ReadVarint();

    public uint ReadFixed32()
    {
        var s = Take(4);
        return BinaryPrimitives.ReadUInt32LittleEndian(s);
    }

    public ulong ReadFixed64()
    {
        var s = Take(8);
        return BinaryPrimitives.ReadUInt64LittleEndian(s);
    }

    public float ReadFloat() => BitConverter.UInt32BitsToSingle(ReadFixed32());

    public double ReadDouble() => BitConverter.UInt64BitsToDouble(ReadFixed64());

    /// <summary>The payload of a length-delimited field (a sub-message, string, bytes or packed repeated scalars).</summary>
    public ReadOnlySpan<byte> ReadBytes()
    {
        ulong len = ReadVarint();
        if (len > (ulong)(_data.Length - _pos)) throw new InvalidDataException($"protobuf: length {len} runs past the end of the message.");
        return Take((int)len);
    }

    public string ReadString() => Encoding.UTF8.GetString(ReadBytes());

    /// <summary>Skips a field of the given wire type.</summary>
    public void Skip(int wireType)
    {
        switch (wireType)
        {
            case 0: ReadVarint(); break;
            case 1: Take(8); break;
            case 2: ReadBytes(); break;
            case 5: Take(4); break;
            default: throw new InvalidDataException($"protobuf: unsupported wire type {wireType} (groups are not supported).");
        }
    }

    /// <summary>Appends a repeated int64/int32 field, packed (wire type 2) or not (wire type 0).</summary>
    public void ReadRepeatedInt64(int wireType, List<long> into)
    {
        if (wireType == 0) { into.Add(ReadInt64()); return; }
        if (wireType != 2) throw new InvalidDataException($"protobuf: repeated varint field with wire type {wireType}.");
        var inner = new ProtoWireReader(ReadBytes());
        while (!inner.End) into.Add(inner.ReadInt64());
    }

    /// <summary>Appends a repeated float field, packed (wire type 2) or not (wire type 5).</summary>
    public void ReadRepeatedFloat(int wireType, List<float> into)
    {
        if (wireType == 5) { into.Add(ReadFloat()); return; }
        if (wireType != 2) throw new InvalidDataException($"protobuf: repeated float field with wire type {wireType}.");
        var bytes = ReadBytes();
        if (bytes.Length % 4 != 0) throw new InvalidDataException("protobuf: packed float field length is not a multiple of 4.");
        if (BitConverter.IsLittleEndian) { into.AddRange(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes)); return; }
        for (int i = 0; i < bytes.Length; i += 4) into.Add(BinaryPrimitives.ReadSingleLittleEndian(bytes.Slice(i, 4)));
    }

    /// <summary>Appends a repeated double field, packed (wire type 2) or not (wire type 1).</summary>
    public void ReadRepeatedDouble(int wireType, List<double> into)
    {
        if (wireType == 1) { into.Add(ReadDouble()); return; }
        if (wireType != 2) throw new InvalidDataException($"protobuf: repeated double field with wire type {wireType}.");
        var bytes = ReadBytes();
        if (bytes.Length % 8 != 0) throw new InvalidDataException("protobuf: packed double field length is not a multiple of 8.");
        for (int i = 0; i < bytes.Length; i += 8) into.Add(BinaryPrimitives.ReadDoubleLittleEndian(bytes.Slice(i, 8)));
    }

    ReadOnlySpan<byte> Take(int n)
    {
        if (n > _data.Length - _pos) throw new InvalidDataException("protobuf: truncated message.");
        var s = _data.Slice(_pos, n);
        _pos += n;
        return s;
    }
}
