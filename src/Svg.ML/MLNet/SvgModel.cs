using System.IO.Compression;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Svg.ML.MLNet;

/// <summary>
/// Saves and loads fitted models that contain Svg.ML transformers, alone or in chains mixed with ML.NET transformers
/// (ML.NET's own format, <c>mlContext.Model.Save</c>, is closed to third-party transformers).
/// <para>
/// File layout: a zip with <c>model.json</c> (format name and version, the input schema, the list of segments) and one
/// entry per segment: runs of consecutive ML.NET transformers saved by <c>mlContext.Model.Save</c> as nested zips, and
/// each Svg.ML transformer in its own archive (manifest, safetensors weights, options).
/// </para>
/// </summary>
public static class SvgModel
{
    /// <summary>The format name written in <c>model.json</c>.</summary>
    public const string Format = "Svg.ML.Model";

    /// <summary>The version of the file layout this library writes (and the newest it reads).</summary>
    public const int FormatVersion = 1;

    const string IndexEntry = "model.json";

    static readonly Dictionary<string, Func<MLContext, Stream, ITransformer>> Loaders = new()
    {
        [SvgFeaturizerTransformer.Kind] = (ml, s) => SvgFeaturizerTransformer.Load(ml, s),
        [SvgDecoderTransformer.Kind] = (ml, s) => SvgDecoderTransformer.Load(ml, s),
        [SvgGenerator.Kind] = (ml, s) => SvgGenerator.Load(ml, s),
        [SvgEditTransformer.Kind] = (ml, s) => SvgEditTransformer.Load(ml, s),
        [SvgInterpolationTransformer.Kind] = (ml, s) => SvgInterpolationTransformer.Load(ml, s),
        [Dense.SvgDenseTransformer.Kind] = (ml, s) => Dense.SvgDenseTransformer.Load(ml, s),
    };

    /// <summary>
    /// Saves <paramref name="model"/> (one transformer or a chain, nested chains included) with the schema of the data it
    /// was fitted on (may be null).
    /// </summary>
    public static void Save(MLContext mlContext, ITransformer model, DataViewSchema? inputSchema, string path)
    {
        string tmp = path + ".tmp";
        using (var f = File.Create(tmp)) Save(mlContext, model, inputSchema, f);
        File.Move(tmp, path, overwrite: true);
    }

    /// <inheritdoc cref="Save(MLContext, ITransformer, DataViewSchema?, string)"/>
    public static void Save(MLContext mlContext, ITransformer model, DataViewSchema? inputSchema, Stream stream)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(model);
        var flat = Flatten(model).ToList();
        var segments = new JsonArray();
        using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
        var schema = inputSchema;
        int index = 0;
        for (int i = 0; i < flat.Count;)
        {
            string entry = $"segment-{index++:D3}.zip";
            if (flat[i] is SvgTransformerBase svg)
            {
                using (var s = zip.CreateEntry(entry, CompressionLevel.NoCompression).Open()) svg.Save(s);
                segments.Add(new JsonObject { ["kind"] = "svg", ["type"] = svg.ArchiveKind, ["entry"] = entry });
                schema = schema is null ? null : svg.GetOutputSchema(schema);
                i++;
                continue;
            }
            int j = i;
            while (j < flat.Count && flat[j] is not SvgTransformerBase) j++;
            var run = new TransformerChain<ITransformer>(flat.Skip(i).Take(j - i).ToArray());
            using (var ms = new MemoryStream())
            {
                mlContext.Model.Save(run, schema, ms);
                using var s = zip.CreateEntry(entry, CompressionLevel.NoCompression).Open();
                ms.Position = 0;
                ms.CopyTo(s);
            }
            segments.Add(new JsonObject { ["kind"] = "mlnet", ["count"] = j - i, ["entry"] = entry });
            schema = schema is null ? null : run.GetOutputSchema(schema);
            i = j;
        }
        var index_ = new JsonObject
        {
            ["format"] = Format,
            ["formatVersion"] = FormatVersion,
            ["single"] = model is not IEnumerable<ITransformer>,
            ["inputSchema"] = inputSchema is null ? null : SchemaJson.Write(inputSchema),
            ["segments"] = segments,
        };
        using (var s = zip.CreateEntry(IndexEntry).Open())
            s.Write(System.Text.Encoding.UTF8.GetBytes(index_.ToJsonString(new() { WriteIndented = true })));
    }

    /// <summary>Loads a model written by <see cref="Save(MLContext, ITransformer, DataViewSchema?, string)"/>.</summary>
    public static ITransformer Load(MLContext mlContext, string path, out DataViewSchema? inputSchema)
    {
        using var f = File.OpenRead(path);
        try { return Load(mlContext, f, out inputSchema); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
    }

    /// <inheritdoc cref="Load(MLContext, string, out DataViewSchema?)"/>
    public static ITransformer Load(MLContext mlContext, Stream stream, out DataViewSchema? inputSchema)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ZipArchive zip;
        try { zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true); }
        catch (InvalidDataException e) { throw new InvalidDataException("not an Svg.ML model file (not a zip archive).", e); }
        using (zip)
        {
            var idx = zip.GetEntry(IndexEntry);
            if (idx is null)
            {
                if (zip.GetEntry("manifest.json") is not null)
                    throw new InvalidDataException("this is a single Svg.ML transformer file: load it with its type's Load method " +
                                                   "(e.g. SvgFeaturizerTransformer.Load), or save models with SvgModel.Save.");
                throw new InvalidDataException($"not an Svg.ML model file (no {IndexEntry}).");
            }
            JsonObject index;
            using (var s = idx.Open()) index = JsonNode.Parse(s)!.AsObject();
            if (index["format"]?.GetValue<string>() != Format) throw new InvalidDataException("not an Svg.ML model file.");
            int version = index["formatVersion"]?.GetValue<int>() ?? 0;
            if (version < 1 || version > FormatVersion)
                throw new InvalidDataException($"Svg.ML model format version {version} is not supported (this library reads 1..{FormatVersion}).");
            inputSchema = index["inputSchema"] is JsonArray a ? SchemaJson.Read(a) : null;
            var transformers = new List<ITransformer>();
            foreach (var seg in index["segments"]!.AsArray())
            {
                string entry = seg!["entry"]!.GetValue<string>();
                var e = zip.GetEntry(entry) ?? throw new InvalidDataException($"missing entry {entry}.");
                using var ms = new MemoryStream();
                using (var s = e.Open()) s.CopyTo(ms);
                ms.Position = 0;
                switch (seg["kind"]!.GetValue<string>())
                {
                    case "svg":
                        string type = seg["type"]!.GetValue<string>();
                        if (!Loaders.TryGetValue(type, out var load)) throw new InvalidDataException($"unknown Svg.ML transformer kind '{type}'.");
                        transformers.Add(load(mlContext, ms));
                        break;
                    case "mlnet":
                        transformers.AddRange(Flatten(mlContext.Model.Load(ms, out _)));
                        break;
                    default:
                        throw new InvalidDataException($"unknown segment kind '{seg["kind"]}'.");
                }
            }
            bool single = index["single"]?.GetValue<bool>() ?? false;
            return single && transformers.Count == 1 ? transformers[0] : new TransformerChain<ITransformer>(transformers.ToArray());
        }
    }

    /// <summary>The transformers of a model in application order, nested chains expanded.</summary>
    static IEnumerable<ITransformer> Flatten(ITransformer model)
    {
        if (model is IEnumerable<ITransformer> chain)
        {
            foreach (var t in chain)
                foreach (var inner in Flatten(t)) yield return inner;
        }
        else yield return model;
    }

    /// <summary>Input schemas as JSON: names and types (numbers, text, booleans, vectors with dimensions, keys, images).</summary>
    static class SchemaJson
    {
        public static JsonArray Write(DataViewSchema schema)
        {
            var a = new JsonArray();
            foreach (var c in schema)
            {
                if (c.IsHidden) continue;
                var t = TypeToJson(c.Type);
                if (t is null) continue;            // a type this format does not describe: left out of the stored schema
                a.Add(new JsonObject { ["name"] = c.Name, ["type"] = t });
            }
            return a;
        }

        public static DataViewSchema Read(JsonArray a)
        {
            var b = new DataViewSchema.Builder();
            foreach (var c in a) b.AddColumn(c!["name"]!.GetValue<string>(), TypeFromJson(c["type"]!.AsObject()));
            return b.ToSchema();
        }

        static JsonObject? TypeToJson(DataViewType type) => type switch
        {
            KeyDataViewType k => new JsonObject { ["key"] = Primitive(k.RawType), ["count"] = k.Count },
            VectorDataViewType v when TypeToJson(v.ItemType) is { } item =>
                new JsonObject { ["vector"] = item, ["dims"] = new JsonArray(v.Dimensions.Select(d => (JsonNode)d).ToArray()) },
            ImageDataViewType im => new JsonObject { ["image"] = true, ["height"] = im.Height, ["width"] = im.Width },
            TextDataViewType => new JsonObject { ["primitive"] = "Text" },
            BooleanDataViewType => new JsonObject { ["primitive"] = "Boolean" },
            NumberDataViewType n => new JsonObject { ["primitive"] = Primitive(n.RawType) },
            _ => null,
        };

        static string Primitive(Type t) => t.Name;

        static DataViewType TypeFromJson(JsonObject o)
        {
            if (o["key"] is { } key) return new KeyDataViewType(RawType(key.GetValue<string>()), o["count"]!.GetValue<ulong>());
            if (o["vector"] is JsonObject item)
                return new VectorDataViewType((PrimitiveDataViewType)TypeFromJson(item), o["dims"]!.AsArray().Select(d => d!.GetValue<int>()).ToArray());
            if (o["image"] is not null)
            {
                int h = o["height"]!.GetValue<int>(), w = o["width"]!.GetValue<int>();
                return h > 0 && w > 0 ? new ImageDataViewType(h, w) : new ImageDataViewType();
            }
            return o["primitive"]!.GetValue<string>() switch
            {
                "Text" => TextDataViewType.Instance,
                "Boolean" => BooleanDataViewType.Instance,
                "Single" => NumberDataViewType.Single,
                "Double" => NumberDataViewType.Double,
                "SByte" => NumberDataViewType.SByte,
                "Byte" => NumberDataViewType.Byte,
                "Int16" => NumberDataViewType.Int16,
                "UInt16" => NumberDataViewType.UInt16,
                "Int32" => NumberDataViewType.Int32,
                "UInt32" => NumberDataViewType.UInt32,
                "Int64" => NumberDataViewType.Int64,
                "UInt64" => NumberDataViewType.UInt64,
                var p => throw new InvalidDataException($"unknown column type '{p}' in the stored input schema."),
            };
        }

        static Type RawType(string name) => name switch
        {
            "Byte" => typeof(byte), "UInt16" => typeof(ushort), "UInt32" => typeof(uint), "UInt64" => typeof(ulong),
            _ => throw new InvalidDataException($"unknown key type '{name}'."),
        };
    }
}
