using System.Buffers.Binary;
using System.IO.Compression;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Data;

/// <summary>Element types of the IDX format (the third magic byte).</summary>
public enum IdxDataType : byte
{
    UInt8 = 0x08, Int8 = 0x09, Int16 = 0x0B, Int32 = 0x0C, Float32 = 0x0D, Float64 = 0x0E,
}

/// <summary>An IDX array: element type, shape, and the values as little-endian bytes.</summary>
/// <param name="DataType">Element type.</param>
/// <param name="Shape">Dimensions; <c>Shape[0]</c> is the item count actually read.</param>
/// <param name="Data">Values, little-endian (converted from the file's big-endian order).</param>
/// <param name="TotalItems">Items the file holds (≥ <c>Shape[0]</c> when a limit was applied).</param>
public sealed record IdxArray(IdxDataType DataType, int[] Shape, byte[] Data, int TotalItems)
{
    /// <summary>The values as a CPU tensor of the matching dtype and shape.</summary>
    public Tensor ToTensor()
    {
        Runtime.TorchRuntime.EnsureInitialized();
        var type = DataType switch
        {
            IdxDataType.UInt8 => ScalarType.Byte, IdxDataType.Int8 => ScalarType.Int8, IdxDataType.Int16 => ScalarType.Int16,
            IdxDataType.Int32 => ScalarType.Int32, IdxDataType.Float32 => ScalarType.Float32, _ => ScalarType.Float64,
        };
        var t = empty(Shape.Select(d => (long)d).ToArray(), type);
        if (Data.Length > 0) t.bytes = Data;
        return t;
    }
}

/// <summary>
/// Reads IDX files (the MNIST / Fashion-MNIST format: magic 0x00 0x00 type ndim, big-endian int32 dimensions,
/// big-endian values), gzip-compressed (detected by its magic bytes) or raw.
/// </summary>
public static class IdxReader
{
    /// <summary>Reads <paramref name="path"/>; with <paramref name="maxItems"/>, only the first items along dimension 0.</summary>
    public static IdxArray Read(string path, int? maxItems = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"IDX file not found: {path}", path);
        using var file = File.OpenRead(path);
        try { return Read(file, maxItems); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
    }

    /// <summary>Reads an IDX stream, gzip-compressed or raw.</summary>
    public static IdxArray Read(Stream stream, int? maxItems = null)
    {
        var buffered = new BufferedStream(stream, 1 << 16);
        Span<byte> head = stackalloc byte[4];
        ReadExactly(buffered, head, "magic");
        Stream body = buffered;
        bool gz = head[0] == 0x1F && head[1] == 0x8B;
        if (gz)
        {
            // Restart: the gzip stream needs its own first bytes.
            var rest = new ConcatStream(head.ToArray(), buffered);
            body = new GZipStream(rest, CompressionMode.Decompress);
            ReadExactly(body, head, "magic");
        }
        try
        {
            if (head[0] != 0 || head[1] != 0) throw new InvalidDataException("not an IDX file (bad magic).");
            var type = (IdxDataType)head[2];
            if (!Enum.IsDefined(type)) throw new InvalidDataException($"unknown IDX element type 0x{head[2]:X2}.");
            int ndim = head[3];
            if (ndim == 0) throw new InvalidDataException("IDX file with no dimensions.");
            var shape = new int[ndim];
            Span<byte> d4 = stackalloc byte[4];
            for (int i = 0; i < ndim; i++)
            {
                ReadExactly(body, d4, "dimensions");
                shape[i] = BinaryPrimitives.ReadInt32BigEndian(d4);
                if (shape[i] < 0) throw new InvalidDataException($"negative dimension {shape[i]}.");
            }
            int total = shape[0];
            if (maxItems is int m) shape[0] = Math.Min(shape[0], Math.Max(0, m));
            int size = ElementSize(type);
            long count = shape.Aggregate(1L, (a, b) => a * b);
            if (count * size > Array.MaxLength) throw new InvalidDataException("IDX array too large for one buffer; read it with maxItems.");
            var data = new byte[count * size];
            ReadExactly(body, data, "values");
            if (BitConverter.IsLittleEndian && size > 1)
                for (int i = 0; i < data.Length; i += size) data.AsSpan(i, size).Reverse();
            return new IdxArray(type, shape, data, total);
        }
        finally { if (gz) body.Dispose(); }
    }

    static int ElementSize(IdxDataType t) => t switch
    {
        IdxDataType.UInt8 or IdxDataType.Int8 => 1,
        IdxDataType.Int16 => 2,
        IdxDataType.Int32 or IdxDataType.Float32 => 4,
        _ => 8,
    };

    static void ReadExactly(Stream s, Span<byte> buffer, string what)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = s.Read(buffer[read..]);
            if (n == 0) throw new InvalidDataException($"IDX file is truncated (while reading the {what}).");
            read += n;
        }
    }

    /// <summary>A prefix of already-read bytes followed by the rest of a stream.</summary>
    sealed class ConcatStream(byte[] prefix, Stream rest) : Stream
    {
        int _pos;
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            if (_pos < prefix.Length)
            {
                int n = Math.Min(buffer.Length, prefix.Length - _pos);
                prefix.AsSpan(_pos, n).CopyTo(buffer);
                _pos += n;
                return n;
            }
            return rest.Read(buffer);
        }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

/// <summary>Labelled image sets stored as a pair of IDX files (images [N, H, W] uint8, labels [N] uint8).</summary>
public static class IdxDataset
{
    /// <summary>
    /// Loads images (uint8 [N, H, W] or [N, H, W, 3]) and labels (uint8 [N]) → <see cref="LabeledImages"/> with
    /// pixels [N, 1, H, W] (or [N, 3, H, W]). <paramref name="limit"/> keeps the first images.
    /// Class names default to "0", "1", … up to the largest label.
    /// </summary>
    public static LabeledImages Load(string imagesPath, string labelsPath, IReadOnlyList<string>? classNames = null, int? limit = null)
    {
        var images = IdxReader.Read(imagesPath, limit);
        var labels = IdxReader.Read(labelsPath, limit);
        if (images.DataType != IdxDataType.UInt8 || labels.DataType != IdxDataType.UInt8)
            throw new InvalidDataException($"expected uint8 IDX images and labels, got {images.DataType} and {labels.DataType}.");
        if (labels.Shape.Length != 1 || labels.Shape[0] != images.Shape[0] || labels.TotalItems != images.TotalItems)
            throw new InvalidDataException($"{imagesPath} holds {images.TotalItems} images, {labelsPath} {labels.TotalItems} labels.");
        long[] labelValues = labels.Data.Select(b => (long)b).ToArray();
        classNames ??= Enumerable.Range(0, labelValues.Length == 0 ? 0 : (int)labelValues.Max() + 1).Select(i => i.ToString()).ToArray();

        var t = images.ToTensor();
        Tensor pixels = images.Shape.Length switch
        {
            3 => t.unsqueeze(1),
            4 when images.Shape[3] == 3 => t.permute(0, 3, 1, 2).contiguous(),
            _ => throw new InvalidDataException($"unsupported IDX image shape [{string.Join(",", images.Shape)}]."),
        };
        if (!ReferenceEquals(pixels, t)) t.Dispose();
        string identity = $"idx:{DataIdentity.OfFiles(new[] { imagesPath, labelsPath })}|n={images.Shape[0]}";
        return new LabeledImages(pixels, labelValues, classNames, identity);
    }
}

/// <summary>Fashion-MNIST (Zalando, 28×28 grayscale, 10 classes; 60 000 train / 10 000 test images).</summary>
public static class FashionMnist
{
    /// <summary>Where Debian's <c>dataset-fashion-mnist</c> package installs the full files.</summary>
    public const string DebianDirectory = "/usr/share/datasets/fashion-mnist";

    /// <summary>The ten class names, in label order.</summary>
    public static readonly IReadOnlyList<string> ClassNames = new[]
    {
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    };

    /// <summary>
    /// The folder <see cref="Load"/> reads by default: the subset bundled with the repository
    /// (<see cref="SampleData.FashionMnistDirectory"/>: the first 6 000 train / 2 000 test images, the same on every
    /// machine) when it is found, else <see cref="DebianDirectory"/>.
    /// </summary>
    public static string DefaultDirectory => SampleData.Root is null ? DebianDirectory : SampleData.FashionMnistDirectory;

    /// <summary>
    /// Loads the train or test split from <paramref name="directory"/> (default <see cref="DefaultDirectory"/>;
    /// files <c>{train|t10k}-{images-idx3|labels-idx1}-ubyte[.gz]</c>). With <paramref name="limit"/>, the first
    /// <c>limit</c> images; fewer only when the files hold fewer.
    /// </summary>
    public static LabeledImages Load(bool train = false, int? limit = null, string? directory = null)
    {
        directory ??= DefaultDirectory;
        string prefix = train ? "train" : "t10k";
        string images = Find(directory, $"{prefix}-images-idx3-ubyte");
        string labels = Find(directory, $"{prefix}-labels-idx1-ubyte");
        return IdxDataset.Load(images, labels, ClassNames, limit);
    }

    static string Find(string directory, string stem)
    {
        foreach (var name in new[] { stem + ".gz", stem })
        {
            string p = Path.Combine(directory, name);
            if (File.Exists(p)) return p;
        }
        throw new FileNotFoundException(
            $"Fashion-MNIST file {stem}(.gz) not found in {directory} (the repository bundles a subset in data/fashion-mnist; " +
            "the full set: apt-get install dataset-fashion-mnist).");
    }
}
