using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using Svg.ML.Autoencoder;
using Svg.ML.Checkpoints;
using Svg.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.MLNet;

/// <summary>
/// Estimator of the SVG decoder: a column of SVG features (C×h×w floats, as <see cref="SvgFeaturizerTransformer"/> or
/// <c>SvgGenerator</c> produce) → an image column (<c>MLImage</c>, RGBA, h·f × w·f pixels), decoded in batches by the
/// LDM decoder. <see cref="Fit"/> only loads the weights and checks the schema.
/// </summary>
public sealed class SvgDecoderEstimator : IEstimator<SvgDecoderTransformer>
{
    /// <summary>Every setting of the decoder.</summary>
    public sealed class Options
    {
        /// <summary>The feature column: a float vector of size C·h·w (C = the decoder's latent channels).</summary>
        public string InputColumnName = "Features";

        /// <summary>The image column to add.</summary>
        public string OutputColumnName = "Image";

        /// <summary>SVG autoencoder checkpoint (<c>.ckpt</c> or safetensors) holding the decoder (<c>decoder.*</c>).</summary>
        public string? AutoencoderCheckpointPath;

        /// <summary>The decoder architecture of the checkpoint (default: the release).</summary>
        public LdmDecoderConfig DecoderConfig = LdmDecoderConfig.Released;

        /// <summary>An in-memory decoder used instead of a checkpoint (moved to the device; not disposed by the transformer).</summary>
        public LdmDecoder? Decoder;

        /// <summary>Rows per forward pass; 0 = 8 on CPU, 32 on GPU.</summary>
        public int BatchSize;

        /// <summary>CUDA device; null = the MLContext's <see cref="MLContext.GpuDeviceId"/>.</summary>
        public int? GpuDeviceId;

        /// <summary>Use the CPU when the GPU is unavailable; null = the MLContext's <see cref="MLContext.FallbackToCpu"/>.</summary>
        public bool? FallbackToCpu;

        internal Options Clone() => (Options)MemberwiseClone();
    }

    readonly ContextRef _context;
    readonly Options _options;

    /// <summary>Creates the estimator; device and log come from <paramref name="mlContext"/>.</summary>
    public SvgDecoderEstimator(MLContext mlContext, Options options) : this(new ContextRef(mlContext), options) { }

    internal SvgDecoderEstimator(ContextRef context, Options options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Decoder is null && options.AutoencoderCheckpointPath is null)
            throw new ArgumentException("The decoder needs AutoencoderCheckpointPath or an in-memory Decoder.");
        if (options.Decoder is not null && options.AutoencoderCheckpointPath is not null)
            throw new ArgumentException("Give AutoencoderCheckpointPath or Decoder, not both.");
        if (options.BatchSize < 0) throw new ArgumentOutOfRangeException(nameof(options), "BatchSize must be >= 0.");
        _context = context;
        _options = options.Clone();
    }

    LdmDecoderConfig Config => _options.Decoder?.Config ?? _options.DecoderConfig;

    /// <summary>The input schema plus the image column.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        if (!SchemaShapes.TryFind(inputSchema, _options.InputColumnName, out var col)) throw SchemaErrors.Missing("features", _options.InputColumnName);
        if (col.Kind == SchemaShape.Column.VectorKind.Scalar || col.ItemType != NumberDataViewType.Single)
            throw SchemaErrors.WrongType("features", _options.InputColumnName, $"a float vector of size {Config.ZChannels}·h·w", SchemaShapes.Describe(col));
        return SchemaShapes.With(inputSchema, new[] { (_options.OutputColumnName, (DataViewType)new ImageDataViewType()) });
    }

    /// <summary>Loads the decoder (a checkpoint that does not fit <see cref="Options.DecoderConfig"/> fails here) and checks the input.</summary>
    public SvgDecoderTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        TorchRuntime.EnsureInitialized();
        var ml = _context.Resolve();
        var device = TorchRuntime.ResolveDevice(_options.GpuDeviceId ?? ml.GpuDeviceId, _options.FallbackToCpu ?? ml.FallbackToCpu);
        SvgDecoderTransformer.CheckInput(_options, Config, input.Schema);
        LdmDecoder decoder;
        bool owned;
        if (_options.Decoder is { } d) { decoder = d; owned = false; }
        else { decoder = SvgDecoderTransformer.LoadDecoder(_options.AutoencoderCheckpointPath!, _options.DecoderConfig); owned = true; }
        return new SvgDecoderTransformer(ml, _options, decoder, owned, device);
    }
}

/// <summary>
/// The fitted SVG decoder: adds an image column decoded from a feature column, in batches of
/// <see cref="SvgTransformerBase.BatchSize"/> rows. Also decodes tensors directly (<see cref="Decode"/>).
/// </summary>
public sealed class SvgDecoderTransformer : SvgTransformerBase
{
    internal const string Kind = "SvgDecoder";
    const string Component = "SvgDecoder";

    readonly SvgDecoderEstimator.Options _options;
    readonly LdmDecoder _decoder;
    readonly bool _owned;

    internal SvgDecoderTransformer(MLContext ml, SvgDecoderEstimator.Options options, LdmDecoder decoder, bool owned, Device device) : base(ml, Component)
    {
        _options = options.Clone();
        _options.Decoder = null;
        _decoder = decoder;
        _owned = owned;
        Device = device;
        _decoder.to(device);
        _decoder.eval();
        BatchSize = options.BatchSize > 0 ? options.BatchSize : device.type == DeviceType.CUDA ? 32 : 8;
    }

    /// <inheritdoc/>
    public override int BatchSize { get; }

    /// <summary>The device the decoder runs on.</summary>
    public Device Device { get; }

    /// <summary>The decoder architecture.</summary>
    public LdmDecoderConfig DecoderConfig => _decoder.Config;

    internal override string ArchiveKind => Kind;

    /// <summary>The decoder module (shared with generators that decode through this transformer).</summary>
    internal LdmDecoder Model => _decoder;

    internal static LdmDecoder LoadDecoder(string path, LdmDecoderConfig config)
    {
        SvgAutoencoderWeights ae;
        try { ae = OfficialCheckpoints.LoadSvgAutoencoder(path); }
        catch (CheckpointFormatException e) { throw FeatureModel.NotFitting(path, "SVG autoencoder", e); }
        var decoder = new LdmDecoder(config);
        try
        {
            StateDict.Load(decoder, ae.Decoder, strict: true, source: path);
            return decoder;
        }
        catch (CheckpointMismatchException e)
        {
            decoder.Dispose();
            throw new ArgumentException($"The checkpoint '{path}' does not fit the requested decoder (ch {config.Ch}, ch_mult [{string.Join(",", config.ChMult)}], " +
                                        $"z_channels {config.ZChannels}): {e.Message}", e);
        }
        finally
        {
            foreach (var t in ae.All.Values) t.Dispose();
        }
    }

    /// <summary>The latent grid [h, w] of a feature column, from its type (3-D [C, h, w] or a square C·h·h); null for variable size.</summary>
    internal static (int H, int W)? Grid(SvgDecoderEstimator.Options o, LdmDecoderConfig config, DataViewSchema.Column col)
    {
        if (col.Type is not VectorDataViewType { ItemType: var item } vt || item != NumberDataViewType.Single)
            throw SchemaErrors.WrongType("features", o.InputColumnName, $"a float vector of size {config.ZChannels}·h·w", col.Type);
        if (!vt.IsKnownSize) return null;
        var dims = vt.Dimensions;
        if (dims.Length == 3)
        {
            if (dims[0] != config.ZChannels)
                throw SchemaErrors.WrongType("features", o.InputColumnName, $"{config.ZChannels} channels (the decoder's z_channels)", col.Type);
            return (dims[1], dims[2]);
        }
        int size = vt.Size;
        int side = (int)Math.Round(Math.Sqrt((double)size / config.ZChannels));
        if (size % config.ZChannels != 0 || side * side * config.ZChannels != size)
            throw SchemaErrors.WrongType("features", o.InputColumnName,
                $"a vector of size {config.ZChannels}·h·w (the decoder's z_channels; a flat vector must hold a square grid)", col.Type);
        return (side, side);
    }

    internal static DataViewSchema.Column CheckInput(SvgDecoderEstimator.Options o, LdmDecoderConfig config, DataViewSchema schema)
    {
        var col = schema.GetColumnOrNull(o.InputColumnName) ?? throw SchemaErrors.Missing("features", o.InputColumnName);
        Grid(o, config, col);
        return col;
    }

    private protected override IReadOnlyList<OutputColumn> GetOutputColumns(DataViewSchema inputSchema)
    {
        var col = CheckInput(_options, _decoder.Config, inputSchema);
        var grid = Grid(_options, _decoder.Config, col);
        int f = _decoder.Config.UpsampleFactor;
        var type = grid is { } g ? new ImageDataViewType(g.H * f, g.W * f) : new ImageDataViewType();
        return new[] { new OutputColumn(_options.OutputColumnName, type) };
    }

    private protected override BatchKernel CreateKernel(DataViewSchema inputSchema)
    {
        var col = CheckInput(_options, _decoder.Config, inputSchema);
        return new Kernel(this, col, Grid(_options, _decoder.Config, col));
    }

    /// <summary>SVG features [B, C, h, w] → RGB images [B, 3, h·f, w·f] in [0, 1] (decoder output clamped to [-1, 1], mapped).</summary>
    public Tensor Decode(Tensor features)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var x = _decoder.forward(features.to(ScalarType.Float32).to(Device));
        return ((x.clamp(-1, 1) + 1) / 2).MoveToOuterDisposeScope();
    }

    /// <summary>SVG features [B, C, h, w] → images, decoded in batches of <see cref="SvgTransformerBase.BatchSize"/>.</summary>
    public MLImage[] DecodeToImages(Tensor features)
    {
        var result = new List<MLImage>();
        for (long i = 0; i < features.shape[0]; i += BatchSize)
        {
            using var scope = NewDisposeScope();
            result.AddRange(MLImageTensors.ToImages(Decode(features.narrow(0, i, Math.Min(BatchSize, features.shape[0] - i)))));
        }
        return result.ToArray();
    }

    private protected override void SaveContents(SvgArchive.Writer w)
    {
        w.Manifest["options"] = new JsonObject
        {
            ["inputColumnName"] = _options.InputColumnName,
            ["outputColumnName"] = _options.OutputColumnName,
            ["batchSize"] = _options.BatchSize,
        };
        w.Manifest["decoderConfig"] = SvgArchive.ToNode(_decoder.Config);
        w.AddTensors("decoder.", _decoder.state_dict());
    }

    /// <summary>Loads a decoder saved by <see cref="SvgTransformerBase.Save(string)"/>.</summary>
    public static SvgDecoderTransformer Load(MLContext mlContext, string path)
    {
        using var f = File.OpenRead(path);
        return Load(mlContext, f);
    }

    /// <summary>Loads a decoder saved by <see cref="SvgTransformerBase.Save(Stream)"/>; device from the MLContext.</summary>
    public static SvgDecoderTransformer Load(MLContext mlContext, Stream stream)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        using var r = SvgArchive.Reader.Open(stream, Kind);
        var m = r.Manifest["options"]!.AsObject();
        var config = SvgArchive.FromNode<LdmDecoderConfig>(r.Manifest["decoderConfig"], "decoderConfig");
        var options = new SvgDecoderEstimator.Options
        {
            InputColumnName = m["inputColumnName"]!.GetValue<string>(),
            OutputColumnName = m["outputColumnName"]!.GetValue<string>(),
            BatchSize = m["batchSize"]!.GetValue<int>(),
            DecoderConfig = config,
        };
        var decoder = new LdmDecoder(config);
        try
        {
            StateDict.Load(decoder, r.WithPrefix("decoder."), strict: true, source: "saved SvgDecoder");
            return new SvgDecoderTransformer(mlContext, options, decoder, owned: true, SvgHost.ResolveDevice(mlContext));
        }
        catch
        {
            decoder.Dispose();
            throw;
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && _owned) _decoder.Dispose();
    }

    sealed class Kernel : BatchKernel
    {
        readonly SvgDecoderTransformer _t;
        readonly DataViewSchema.Column _column;
        readonly (int H, int W)? _grid;
        ValueGetter<VBuffer<float>>? _getter;
        VBuffer<float> _value;
        readonly List<float[]> _staged = new();

        public Kernel(SvgDecoderTransformer t, DataViewSchema.Column column, (int H, int W)? grid)
        {
            _t = t; _column = column; _grid = grid;
            InputColumns = new[] { column };
        }

        public override IReadOnlyList<DataViewSchema.Column> InputColumns { get; }
        public override int StagedCount => _staged.Count;
        public override void Bind(DataViewRow row) => _getter = row.GetGetter<VBuffer<float>>(_column);
        public override void Reset() => _staged.Clear();

        int C => _t._decoder.Config.ZChannels;

        public override void Stage(long row)
        {
            try { _getter!(ref _value); }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw new BadValueException(_column.Name, $"{e.GetType().Name}: {e.Message}", e);
            }
            int n = _value.Length;
            if (_grid is { } g)
            {
                if (n != C * g.H * g.W) throw new BadValueException(_column.Name, $"the vector has {n} values, expected {C * g.H * g.W}.");
            }
            else
            {
                int side = (int)Math.Round(Math.Sqrt((double)n / C));
                if (n == 0 || side * side * C != n)
                    throw new BadValueException(_column.Name, $"the vector has {n} values; expected {C}·h·h (the decoder's {C} channels on a square grid).");
                if (_staged.Count > 0 && _staged[0].Length != n)
                    throw new BadValueException(_column.Name, $"the vector has {n} values, unlike the previous rows of its batch ({_staged[0].Length}).");
            }
            var dense = new float[n];
            _value.CopyTo(dense);
            _staged.Add(dense);
        }

        public override OutputBuffer?[] Run(bool[] active)
        {
            int n = _staged[0].Length;
            int h, w;
            if (_grid is { } g) (h, w) = g;
            else h = w = (int)Math.Round(Math.Sqrt((double)n / C));
            var flat = new float[_staged.Count * n];
            for (int i = 0; i < _staged.Count; i++) _staged[i].CopyTo(flat, i * n);
            using var scope = NewDisposeScope();
            var z = tensor(flat).reshape(_staged.Count, C, h, w);
            var rgb = _t.Decode(z);
            byte[] bytes = MLImageTensors.ToRgbaBytes(rgb);
            return new OutputBuffer?[] { new ImageBuffer(bytes, (int)rgb.shape[3], (int)rgb.shape[2]) };
        }
    }
}
