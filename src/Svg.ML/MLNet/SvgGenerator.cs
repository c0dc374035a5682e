using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using Svg.ML.Autoencoder;
using Svg.ML.Checkpoints;
using Svg.ML.Diffusion;
using Svg.ML.Diffusion.Editing;
using Svg.ML.Runtime;
using Svg.ML.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.MLNet;

/// <summary>
/// A class-conditional SVG generator (a trained <see cref="SvgDiT"/> with its feature normalisation and, optionally,
/// a decoder), as a transformer: rows with a label (and optionally a seed) → generated SVG features and/or decoded
/// images, sampled in batches. Also a direct API: <see cref="Generate"/>, <see cref="GenerateImageTensors"/>,
/// <see cref="GenerateImages"/>. Made by <see cref="SvgDiffusionTrainer"/> or <see cref="Create"/>.
/// <para>
/// Each row's noise comes from its own seed (the seed column, else <see cref="Options.Seed"/> + the row's position in
/// the input), so a row's output does not depend on the batch it is sampled in.
/// </para>
/// </summary>
public sealed partial class SvgGenerator : SvgTransformerBase
{
    internal const string Kind = "SvgGenerator";
    const string Component = "SvgGenerator";

    /// <summary>Columns and sampling settings of a generator.</summary>
    public sealed class Options
    {
        /// <summary>The class label column: a key type (value k = class k−1, as MapValueToKey makes) or an integer
        /// column holding the class index.</summary>
        public string LabelColumnName = "Label";

        /// <summary>Optional integer column with a noise seed per row.</summary>
        public string? SeedColumnName;

        /// <summary>Column for the generated features (C×h×w, de-normalised: the featurizer's space), or null.</summary>
        public string? FeatureColumnName = "GeneratedFeatures";

        /// <summary>Column for the decoded images (needs a decoder), or null.</summary>
        public string? ImageColumnName = "GeneratedImage";

        /// <summary>Seed of rows without a seed column: row i uses Seed + i.</summary>
        public long Seed;

        /// <summary>Rows sampled together; 0 = 8 on CPU, 64 on GPU.</summary>
        public int BatchSize;

        /// <summary>Sampler: steps, Euler/Heun, guidance mode and scale, interval, time shift (default: the official
        /// <c>sample_svg.py</c> settings, 25 Euler steps, CFG 4, shift 0.15).</summary>
        public SamplerOptions Sampler = new();

        /// <summary>Compute precision of the diffusion model while sampling. <see cref="Precision.Bf16"/>: the DiT runs
        /// in a bfloat16 copy of its weights (the saved weights stay float32); the noise, the time grid and the ODE
        /// state stay float32. The decoder runs in float32. Default float32.</summary>
        public Precision Precision = Precision.Fp32;

        internal Options Clone() => (Options)MemberwiseClone();
    }

    readonly Options _options;
    readonly SvgDiT _model;
    readonly ComputeCopy<SvgDiT>? _compute;   // the bf16 copy that samples (Precision.Bf16)
    readonly FeatureNormalizer _normalizer;
    readonly LdmDecoder? _decoder;
    readonly bool _ownsDecoder;
    readonly int _gridH, _gridW;

    SvgGenerator(MLContext ml, Options options, SvgDiT model, FeatureNormalizer normalizer, LdmDecoder? decoder, bool ownsDecoder, Device device)
        : base(ml, Component)
    {
        _options = options.Clone();
        _model = model;
        _normalizer = normalizer;
        _decoder = decoder;
        _ownsDecoder = ownsDecoder;
        Device = device;
        _gridH = _gridW = model.Config.GridSize;
        if (normalizer.Channels != model.Config.InChannels)
            throw new ArgumentException($"The normaliser has {normalizer.Channels} channels, the model {model.Config.InChannels}.");
        if (decoder is not null && decoder.Config.ZChannels != model.Config.InChannels)
            throw new ArgumentException($"The decoder takes {decoder.Config.ZChannels} channels, the model makes {model.Config.InChannels}.");
        if (_options.FeatureColumnName is null && _options.ImageColumnName is null)
            throw new ArgumentException("Ask for at least one output column (FeatureColumnName, ImageColumnName).");
        if (decoder is null) _options.ImageColumnName = null;
        _model.to(device);
        _model.eval();
        if (_options.Precision != Precision.Fp32)
        {
            var config = model.Config;
            _compute = new ComputeCopy<SvgDiT>(model, () => TrainingRandom.WithGlobalSeed(0, () => new SvgDiT(config)),
                                               _options.Precision.ComputeType(), device);
            _compute.Module.eval();
        }
        _decoder?.to(device);
        _decoder?.eval();
        BatchSize = _options.BatchSize > 0 ? _options.BatchSize : device.type == DeviceType.CUDA ? 64 : 8;
    }

    /// <summary>
    /// A generator from in-memory parts (e.g. the released SVG-XL weights loaded with
    /// <see cref="OfficialCheckpoints.LoadSvgDiT"/>). The generator owns <paramref name="model"/> and
    /// <paramref name="normalizer"/> from then on; <paramref name="decoder"/> (optional) stays the caller's.
    /// Device from <paramref name="mlContext"/>.
    /// </summary>
    public static SvgGenerator Create(MLContext mlContext, SvgDiT model, FeatureNormalizer normalizer, Options options, SvgDecoderTransformer? decoder = null)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        return new SvgGenerator(mlContext, options, model, normalizer, decoder?.Model, ownsDecoder: false, SvgHost.ResolveDevice(mlContext));
    }

    internal static SvgGenerator FromTraining(MLContext ml, Options options, SvgDiT model, FeatureNormalizer normalizer, LdmDecoder? decoder, Device device) =>
        new(ml, options, model, normalizer, decoder, ownsDecoder: false, device);

    /// <inheritdoc/>
    public override int BatchSize { get; }

    /// <summary>The device sampling runs on.</summary>
    public Device Device { get; }

    /// <summary>The diffusion model's configuration (classes, channels, grid).</summary>
    public SvgDiTConfig ModelConfig => _model.Config;

    /// <summary>Number of classes the model was trained on.</summary>
    public int NumClasses => _model.Config.NumClasses;

    /// <summary>Shape [C, h, w] of the generated features.</summary>
    public IReadOnlyList<int> FeatureShape => new[] { _model.Config.InChannels, _gridH, _gridW };

    /// <summary>The sampler settings used from now on (may be changed between calls).</summary>
    public SamplerOptions Sampler
    {
        get => _options.Sampler;
        set => _options.Sampler = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>The per-channel feature normalisation of the model's training data.</summary>
    public FeatureNormalizer Normalizer => _normalizer;

    /// <summary>True when the generator can decode images.</summary>
    public bool CanDecode => _decoder is not null;

    internal override string ArchiveKind => Kind;

    // ---- direct API ----

    /// <summary>
    /// Samples features for <paramref name="labels"/> (class indices) with one seed per sample (default
    /// <see cref="Options.Seed"/> + i), in batches of <see cref="SvgTransformerBase.BatchSize"/>: [N, C, h, w],
    /// de-normalised (the featurizer's feature space), on the CPU.
    /// </summary>
    public Tensor Generate(IReadOnlyList<int> labels, IReadOnlyList<long>? seeds = null) =>
        Batched(labels, seeds, (y, s) => SampleFeatures(y, s).cpu());

    /// <summary>Samples and decodes: RGB images [N, 3, H, W] in [0, 1] on the CPU. Needs a decoder.</summary>
    public Tensor GenerateImageTensors(IReadOnlyList<int> labels, IReadOnlyList<long>? seeds = null) =>
        Batched(labels, seeds, (y, s) => DecodeFeatures(SampleFeatures(y, s)).cpu());

    /// <summary>Samples and decodes into <see cref="MLImage"/>s (RGBA). Needs a decoder.</summary>
    public MLImage[] GenerateImages(IReadOnlyList<int> labels, IReadOnlyList<long>? seeds = null)
    {
        using var images = GenerateImageTensors(labels, seeds);
        return MLImageTensors.ToImages(images);
    }

    Tensor Batched(IReadOnlyList<int> labels, IReadOnlyList<long>? seeds, Func<int[], long[], Tensor> run)
    {
        if (seeds is not null && seeds.Count != labels.Count) throw new ArgumentException("Give one seed per label.", nameof(seeds));
        foreach (int l in labels)
            if (l < 0 || l >= NumClasses) throw new ArgumentOutOfRangeException(nameof(labels), l, $"Labels are class indices in [0, {NumClasses}).");
        var parts = new List<Tensor>();
        try
        {
            for (int i = 0; i < labels.Count; i += BatchSize)
            {
                int n = Math.Min(BatchSize, labels.Count - i);
                var y = labels.Skip(i).Take(n).ToArray();
                var s = Enumerable.Range(i, n).Select(k => seeds?[k] ?? _options.Seed + k).ToArray();
                using var scope = NewDisposeScope();
                parts.Add(run(y, s).MoveToOuterDisposeScope());
            }
            return parts.Count == 1 ? parts[0].alias() : cat(parts, 0);
        }
        finally { foreach (var p in parts) p.Dispose(); }
    }

    /// <summary>Sampled, de-normalised latents [B, C, h, w] on the device.</summary>
    Tensor SampleFeatures(int[] labels, long[] seeds) =>
        // Each row's noise from its own generator, on the CPU (the same noise on every device).
        SampleFromNoise(SeededNoise.Draw(seeds, new long[] { _model.Config.NumTokens, _model.Config.InChannels }, Device), labels);

    /// <summary>Samples from the noise <paramref name="z0"/> [B, T, C] (on the device): de-normalised latents [B, C, h, w].</summary>
    Tensor SampleFromNoise(Tensor z0, int[] labels)
    {
        using var _ = no_grad();
        var config = _model.Config;
        var y = tensor(labels.Select(l => (long)l).ToArray(), device: Device);
        var options = _options.Sampler;
        bool guided = config.ClassDropoutProb > 0 &&
                      !(options.CfgScale == 1 && options.ResolvedGuidance.Mode == GuidanceMode.Constant);
        var nullY = guided ? Diffusion.Sampler.NullLabels(y, config.NullClass) : null;
        var x = new Diffusion.Sampler(_compute?.Module ?? _model).Sample(z0, y, nullY, options);
        return LatentTokens.ToLatent(_normalizer.Denormalize(x), _gridH, _gridW);
    }

    /// <summary>Latents [B, C, h, w] → RGB [B, 3, H, W] in [0, 1] (decoder output clamped to [-1, 1]).</summary>
    internal Tensor DecodeFeatures(Tensor latents)
    {
        var decoder = _decoder ?? throw new InvalidOperationException("This generator has no decoder: give one to decode images.");
        using var _ = no_grad();
        return (decoder.forward(latents).clamp(-1, 1) + 1) / 2;
    }

    // ---- transformer ----

    sealed record Inputs(DataViewSchema.Column Label, DataViewSchema.Column? Seed);

    Inputs CheckInputs(DataViewSchema schema) =>
        new(LabelColumn(schema, "label", _options.LabelColumnName, NumClasses),
            _options.SeedColumnName is { } seedName ? IntegerColumn(schema, "seed", seedName) : null);

    /// <summary>The class-label column <paramref name="name"/>: a UInt32 key with at most <paramref name="numClasses"/> values or an integer class index.</summary>
    internal static DataViewSchema.Column LabelColumn(DataViewSchema schema, string role, string name, int numClasses)
    {
        var label = schema.GetColumnOrNull(name) ?? throw SchemaErrors.Missing(role, name);
        switch (label.Type)
        {
            case KeyDataViewType k:
                if (k.Count > (ulong)numClasses)
                    throw SchemaErrors.WrongType(role, label.Name, $"a key with at most {numClasses} values (the model's classes)", label.Type);
                if (k.RawType != typeof(uint))
                    throw SchemaErrors.WrongType(role, label.Name, "a UInt32 key (as MapValueToKey makes) or an integer class index", label.Type);
                break;
            case NumberDataViewType n when IsInteger(n):
                break;
            default:
                throw SchemaErrors.WrongType(role, label.Name, "a key (MapValueToKey) or an integer class index", label.Type);
        }
        return label;
    }

    /// <summary>The integer column <paramref name="name"/> (e.g. a seed).</summary>
    internal static DataViewSchema.Column IntegerColumn(DataViewSchema schema, string role, string name)
    {
        var c = schema.GetColumnOrNull(name) ?? throw SchemaErrors.Missing(role, name);
        if (c.Type is not NumberDataViewType n || !IsInteger(n)) throw SchemaErrors.WrongType(role, name, "an integer", c.Type);
        return c;
    }

    /// <summary>A reader of an integer or key column as long (keys: the raw value, 0 = missing).</summary>
    internal static Func<long> IntegerReader(DataViewRow row, DataViewSchema.Column c)
    {
        var raw = c.Type is KeyDataViewType k ? k.RawType : c.Type.RawType;
        if (raw == typeof(uint)) { var g = row.GetGetter<uint>(c); return () => { uint v = 0; g(ref v); return v; }; }
        if (raw == typeof(int)) { var g = row.GetGetter<int>(c); return () => { int v = 0; g(ref v); return v; }; }
        if (raw == typeof(long)) { var g = row.GetGetter<long>(c); return () => { long v = 0; g(ref v); return v; }; }
        if (raw == typeof(ulong)) { var g = row.GetGetter<ulong>(c); return () => { ulong v = 0; g(ref v); return unchecked((long)v); }; }
        if (raw == typeof(short)) { var g = row.GetGetter<short>(c); return () => { short v = 0; g(ref v); return v; }; }
        if (raw == typeof(ushort)) { var g = row.GetGetter<ushort>(c); return () => { ushort v = 0; g(ref v); return v; }; }
        if (raw == typeof(byte)) { var g = row.GetGetter<byte>(c); return () => { byte v = 0; g(ref v); return v; }; }
        if (raw == typeof(sbyte)) { var g = row.GetGetter<sbyte>(c); return () => { sbyte v = 0; g(ref v); return v; }; }
        throw new InvalidOperationException($"Column '{c.Name}' of type {c.Type} is not an integer column.");
    }

    /// <summary>Reads a label with <paramref name="read"/> (see <see cref="IntegerReader"/>) as a class index, or throws naming the column.</summary>
    internal static int ReadClass(Func<long> read, DataViewSchema.Column label, int numClasses)
    {
        long raw = ReadInteger(read, label);
        long cls = label.Type is KeyDataViewType ? raw - 1 : raw;
        if (label.Type is KeyDataViewType && raw == 0) throw new BadValueException(label.Name, "missing label (key value 0).");
        if (cls < 0 || cls >= numClasses) throw new BadValueException(label.Name, $"class {cls} is outside [0, {numClasses}).");
        return (int)cls;
    }

    /// <summary>Reads an integer with <paramref name="read"/>; a failing getter becomes a bad value of <paramref name="column"/>.</summary>
    internal static long ReadInteger(Func<long> read, DataViewSchema.Column column)
    {
        try { return read(); }
        catch (Exception e) when (e is not OperationCanceledException) { throw new BadValueException(column.Name, $"{e.GetType().Name}: {e.Message}", e); }
    }

    internal static bool IsInteger(NumberDataViewType t) =>
        t == NumberDataViewType.Int32 || t == NumberDataViewType.UInt32 || t == NumberDataViewType.Int64 || t == NumberDataViewType.UInt64 ||
        t == NumberDataViewType.Int16 || t == NumberDataViewType.UInt16 || t == NumberDataViewType.Byte || t == NumberDataViewType.SByte;

    private protected override IReadOnlyList<OutputColumn> GetOutputColumns(DataViewSchema inputSchema)
    {
        CheckInputs(inputSchema);
        var list = new List<OutputColumn>();
        if (_options.FeatureColumnName is { } f)
            list.Add(new(f, new VectorDataViewType(NumberDataViewType.Single, _model.Config.InChannels, _gridH, _gridW)));
        if (_options.ImageColumnName is { } im && _decoder is not null)
        {
            int up = _decoder.Config.UpsampleFactor;
            list.Add(new(im, new ImageDataViewType(_gridH * up, _gridW * up)));
        }
        return list;
    }

    private protected override BatchKernel CreateKernel(DataViewSchema inputSchema) =>
        new Kernel(this, CheckInputs(inputSchema), GetOutputColumns(inputSchema));

    sealed class Kernel : BatchKernel
    {
        readonly SvgGenerator _g;
        readonly Inputs _inputs;
        readonly IReadOnlyList<OutputColumn> _outputs;
        Func<long>? _label;
        Func<long>? _seed;
        readonly List<int> _labels = new();
        readonly List<long> _seeds = new();

        public Kernel(SvgGenerator g, Inputs inputs, IReadOnlyList<OutputColumn> outputs)
        {
            _g = g;
            _inputs = inputs;
            _outputs = outputs;
            InputColumns = inputs.Seed is { } s ? new[] { inputs.Label, s } : new[] { inputs.Label };
        }

        public override IReadOnlyList<DataViewSchema.Column> InputColumns { get; }
        public override int StagedCount => _labels.Count;

        public override void Bind(DataViewRow row)
        {
            _label = IntegerReader(row, _inputs.Label);
            if (_inputs.Seed is { } s) _seed = IntegerReader(row, s);
        }

        public override void Stage(long row)
        {
            int cls = ReadClass(_label!, _inputs.Label, _g.NumClasses);
            long seed = _seed is null ? _g._options.Seed + row : ReadInteger(_seed, _inputs.Seed!.Value);
            _labels.Add(cls);
            _seeds.Add(seed);
        }

        public override void Reset()
        {
            _labels.Clear();
            _seeds.Clear();
        }

        public override OutputBuffer?[] Run(bool[] active)
        {
            var outputs = _outputs;
            var result = new OutputBuffer?[active.Length];
            using var scope = NewDisposeScope();
            var latents = _g.SampleFeatures(_labels.ToArray(), _seeds.ToArray());
            for (int j = 0; j < active.Length; j++)
            {
                if (!active[j]) continue;
                if (outputs[j].Name == _g._options.FeatureColumnName)
                {
                    using var c = latents.to(ScalarType.Float32).cpu().contiguous();
                    var data = new float[c.numel()];
                    MemoryMarshal.Cast<byte, float>(c.bytes).CopyTo(data);
                    result[j] = new VectorBuffer(data, (int)(c.numel() / c.shape[0]));
                }
                else
                {
                    var rgb = _g.DecodeFeatures(latents);
                    result[j] = new ImageBuffer(MLImageTensors.ToRgbaBytes(rgb), (int)rgb.shape[3], (int)rgb.shape[2]);
                }
            }
            return result;
        }
    }

    // ---- persistence ----

    private protected override void SaveContents(SvgArchive.Writer w)
    {
        w.Manifest["options"] = new JsonObject
        {
            ["labelColumnName"] = _options.LabelColumnName,
            ["seedColumnName"] = _options.SeedColumnName,
            ["featureColumnName"] = _options.FeatureColumnName,
            ["imageColumnName"] = _options.ImageColumnName,
            ["seed"] = _options.Seed,
            ["batchSize"] = _options.BatchSize,
            ["sampler"] = SvgArchive.ToNode(_options.Sampler),
            ["precision"] = _options.Precision.ToString(),
        };
        w.Manifest["modelConfig"] = SvgArchive.ToNode(_model.Config);
        w.AddTensors("model.", _model.state_dict());
        w.AddTensors("normalizer.", new Dictionary<string, Tensor> { ["mean"] = _normalizer.Mean, ["std"] = _normalizer.Std });
        if (_decoder is not null)
        {
            w.Manifest["decoderConfig"] = SvgArchive.ToNode(_decoder.Config);
            w.AddTensors("decoder.", _decoder.state_dict());
        }
    }

    /// <summary>Loads a generator saved by <see cref="SvgTransformerBase.Save(string)"/>.</summary>
    public static SvgGenerator Load(MLContext mlContext, string path)
    {
        using var f = File.OpenRead(path);
        return Load(mlContext, f);
    }

    /// <summary>Loads a generator saved by <see cref="SvgTransformerBase.Save(Stream)"/>; device from the MLContext.</summary>
    public static SvgGenerator Load(MLContext mlContext, Stream stream)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        using var r = SvgArchive.Reader.Open(stream, Kind);
        return FromArchive(mlContext, r);
    }

    /// <summary>The generator stored in an archive (its own, or one that embeds it, as the editing transformers do).</summary>
    internal static SvgGenerator FromArchive(MLContext mlContext, SvgArchive.Reader r)
    {
        var m = r.Manifest["options"]!.AsObject();
        var options = new Options
        {
            LabelColumnName = m["labelColumnName"]!.GetValue<string>(),
            SeedColumnName = m["seedColumnName"]?.GetValue<string>(),
            FeatureColumnName = m["featureColumnName"]?.GetValue<string>(),
            ImageColumnName = m["imageColumnName"]?.GetValue<string>(),
            Seed = m["seed"]!.GetValue<long>(),
            BatchSize = m["batchSize"]!.GetValue<int>(),
            Sampler = SvgArchive.FromNode<SamplerOptions>(m["sampler"], "sampler"),
            Precision = m["precision"] is { } p ? Enum.Parse<Precision>(p.GetValue<string>()) : Precision.Fp32,
        };
        var config = SvgArchive.FromNode<SvgDiTConfig>(r.Manifest["modelConfig"], "modelConfig");
        var model = new SvgDiT(config);
        LdmDecoder? decoder = null;
        FeatureNormalizer? normalizer = null;
        try
        {
            StateDict.Load(model, r.WithPrefix("model."), strict: true, source: "saved SvgGenerator");
            normalizer = new FeatureNormalizer(r.Tensor("normalizer.mean"), r.Tensor("normalizer.std"));
            if (r.Manifest["decoderConfig"] is { } dc)
            {
                decoder = new LdmDecoder(SvgArchive.FromNode<LdmDecoderConfig>(dc, "decoderConfig"));
                StateDict.Load(decoder, r.WithPrefix("decoder."), strict: true, source: "saved SvgGenerator");
            }
            return new SvgGenerator(mlContext, options, model, normalizer, decoder, ownsDecoder: true, SvgHost.ResolveDevice(mlContext));
        }
        catch
        {
            model.Dispose();
            normalizer?.Dispose();
            decoder?.Dispose();
            throw;
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (!disposing) return;
        _model.Dispose();
        _compute?.Dispose();
        _normalizer.Dispose();
        if (_ownsDecoder) _decoder?.Dispose();
    }
}
