using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using Svg.ML.Autoencoder;
using Svg.ML.Checkpoints;
using Svg.ML.Data;
using Svg.ML.Encoders;
using Svg.ML.Encoders.DinoV3;
using Svg.ML.Metrics;
using Svg.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.MLNet;

/// <summary>What an <see cref="SvgFeaturizerTransformer"/> output column holds.</summary>
public enum SvgFeatureKind
{
    /// <summary>The dense SVG feature map, C×h×w (C = DINOv3 channels + residual channels), row-major; the column type
    /// is a 3-D vector whose <see cref="VectorDataViewType.Dimensions"/> give [C, h, w].</summary>
    FeatureMap,

    /// <summary>The feature map averaged over its h×w positions: C values.</summary>
    Pooled,

    /// <summary>The DINOv3 class token after the final norm (<c>x_norm_clstoken</c>): D values.</summary>
    ClsToken,
}

/// <summary>
/// Estimator of the SVG featurizer: images → SVG features (frozen DINOv3 patch features plus, with an SVG autoencoder,
/// the aligned residual channels). <see cref="Fit"/> loads the weights (a checkpoint that does not fit the requested
/// architecture fails here, naming the file) and makes one batched pass over the data to learn the
/// batch-independent residual alignment statistics and the per-channel feature mean/std that generation uses.
/// </summary>
public sealed class SvgFeaturizerEstimator : IEstimator<SvgFeaturizerTransformer>
{
    /// <summary>Every setting of the featurizer.</summary>
    public sealed class Options
    {
        /// <summary>The image column (<c>MLImage</c>, e.g. from <c>LoadImages</c>): any size, BGRA/RGBA, grayscale or with alpha.</summary>
        public string InputColumnName = "Image";

        /// <summary>Column for the dense feature map (C×h×w), or null for none.</summary>
        public string? FeatureMapColumnName = "Features";

        /// <summary>Column for the pooled feature vector (C), or null for none.</summary>
        public string? PooledColumnName;

        /// <summary>Column for the DINOv3 class token (D), or null for none. Needs a DINOv3 base encoder.</summary>
        public string? ClsTokenColumnName;

        /// <summary>DINOv3 backbone weights: official <c>.pth</c>, Hugging Face safetensors (file or folder), or safetensors
        /// with the official keys. Optional when <see cref="AutoencoderCheckpointPath"/> carries them (<c>encoder.*</c>).</summary>
        public string? DinoCheckpointPath;

        /// <summary>The DINOv3 architecture of <see cref="DinoCheckpointPath"/> (default ViT-S+/16, SVG's encoder).</summary>
        public DinoV3Config DinoConfig = DinoV3Config.ViTSPlus16;

        /// <summary>SVG autoencoder checkpoint (<c>.ckpt</c> or safetensors): adds the residual channels (<c>extra_vit.*</c>).</summary>
        public string? AutoencoderCheckpointPath;

        /// <summary>The residual encoder settings for <see cref="AutoencoderCheckpointPath"/> (default: the release).</summary>
        public SvgEncoderConfig? EncoderConfig;

        /// <summary>An in-memory SVG encoder (base + residual) used instead of checkpoints. Used as is (moved to the
        /// device, eval mode); not disposed by the transformer.</summary>
        public SvgEncoder? Encoder;

        /// <summary>An in-memory frozen base encoder (no residual channels) used instead of checkpoints; not disposed by
        /// the transformer.</summary>
        public IFrozenEncoder? BaseEncoder;

        /// <summary>Square encoder input size; 0 = the encoder's default (256 for SVG). Images are resized to it.</summary>
        public int ImageSize;

        /// <summary>How images of other sizes are brought to <see cref="ImageSize"/>.</summary>
        public ResizeMode Resize = ResizeMode.CenterCrop;

        /// <summary>What happens to an alpha channel.</summary>
        public SvgAlphaMode Alpha = SvgAlphaMode.Drop;

        /// <summary>
        /// Residual alignment. <see cref="ResidualAlignment.Stored"/> (default) uses statistics learned by
        /// <see cref="Fit"/>, so each row's features are independent of its batch; <see cref="ResidualAlignment.BatchStatistics"/>
        /// is the official behaviour (a row depends on the other rows of its batch).
        /// </summary>
        public ResidualAlignment Alignment = ResidualAlignment.Stored;

        /// <summary>Rows per forward pass; 0 = 16 on CPU, 64 on GPU.</summary>
        public int BatchSize;

        /// <summary>Skip rows whose image is missing, empty or corrupt (counted and logged) instead of failing.</summary>
        public bool SkipBadRows;

        /// <summary>Rows used by <see cref="Fit"/> for the statistics; 0 = all.</summary>
        public long MaxStatisticsRows;

        /// <summary>CUDA device; null = the MLContext's <see cref="MLContext.GpuDeviceId"/>.</summary>
        public int? GpuDeviceId;

        /// <summary>Use the CPU when the GPU is unavailable; null = the MLContext's <see cref="MLContext.FallbackToCpu"/>.</summary>
        public bool? FallbackToCpu;

        internal void SetOutput(SvgFeatureKind kind, string name)
        {
            FeatureMapColumnName = kind == SvgFeatureKind.FeatureMap ? name : null;
            PooledColumnName = kind == SvgFeatureKind.Pooled ? name : null;
            ClsTokenColumnName = kind == SvgFeatureKind.ClsToken ? name : null;
        }

        internal Options Clone() => (Options)MemberwiseClone();
    }

    readonly ContextRef _context;
    readonly Options _options;

    /// <summary>Creates the estimator; device, seed and log come from <paramref name="mlContext"/>.</summary>
    public SvgFeaturizerEstimator(MLContext mlContext, Options options) : this(new ContextRef(mlContext), options) { }

    internal SvgFeaturizerEstimator(ContextRef context, Options options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _context = context;
        _options = options.Clone();
        Validate(_options);
    }

    static void Validate(Options o)
    {
        if (string.IsNullOrWhiteSpace(o.InputColumnName)) throw new ArgumentException("InputColumnName must be set.", nameof(o));
        var outputs = new[] { o.FeatureMapColumnName, o.PooledColumnName, o.ClsTokenColumnName }.Where(n => n is not null).ToList();
        if (outputs.Count == 0) throw new ArgumentException("Ask for at least one output column (FeatureMapColumnName, PooledColumnName, ClsTokenColumnName).");
        if (outputs.Distinct().Count() != outputs.Count) throw new ArgumentException("The output columns need distinct names.");
        if (o.Encoder is not null && o.BaseEncoder is not null) throw new ArgumentException("Give Encoder or BaseEncoder, not both.");
        if ((o.Encoder ?? (object?)o.BaseEncoder) is not null && (o.DinoCheckpointPath ?? o.AutoencoderCheckpointPath) is not null)
            throw new ArgumentException("Give either an in-memory encoder or checkpoint paths, not both.");
        if (o.Encoder is null && o.BaseEncoder is null && o.DinoCheckpointPath is null && o.AutoencoderCheckpointPath is null)
            throw new ArgumentException("The featurizer needs a model: DinoCheckpointPath (and optionally AutoencoderCheckpointPath), or an in-memory Encoder/BaseEncoder.");
        if (o.BatchSize < 0) throw new ArgumentOutOfRangeException(nameof(o.BatchSize), "BatchSize must be >= 0.");
        if (o.ImageSize < 0) throw new ArgumentOutOfRangeException(nameof(o.ImageSize), "ImageSize must be >= 0.");
    }

    /// <summary>The input schema plus the output columns (float vectors).</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        if (!SchemaShapes.TryFind(inputSchema, _options.InputColumnName, out var col)) throw SchemaErrors.Missing("image input", _options.InputColumnName);
        if (col.Kind != SchemaShape.Column.VectorKind.Scalar || col.ItemType is not ImageDataViewType)
            throw SchemaErrors.WrongType("image input", _options.InputColumnName, "Image (MLImage, e.g. from LoadImages)", SchemaShapes.Describe(col));
        var shape = Architecture.Of(_options);
        if (_options.ClsTokenColumnName is not null && !shape.CanClsToken)
            throw new ArgumentException($"ClsTokenColumnName '{_options.ClsTokenColumnName}' needs a DINOv3 base encoder (the given one has no class token).");
        return SchemaShapes.With(inputSchema, SvgFeaturizerTransformer.OutputColumns(_options, shape).Select(o => (o.Name, o.Type)));
    }

    /// <summary>
    /// Loads the model and learns the statistics over <paramref name="input"/> (one batched pass, or
    /// <see cref="Options.MaxStatisticsRows"/> rows).
    /// </summary>
    public SvgFeaturizerTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        TorchRuntime.EnsureInitialized();
        var ml = _context.Resolve();
        var device = TorchRuntime.ResolveDevice(_options.GpuDeviceId ?? ml.GpuDeviceId, _options.FallbackToCpu ?? ml.FallbackToCpu);
        SvgFeaturizerTransformer.CheckInput(_options, input.Schema);
        var model = FeatureModel.Create(_options, device);
        try
        {
            var transformer = new SvgFeaturizerTransformer(ml, _options, model);
            transformer.LearnStatistics(input);
            return transformer;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Sizes known before any weight is loaded (for schemas).</summary>
    internal sealed record Architecture(int BaseChannels, int ResidualChannels, int PatchSize, int ImageSize, bool CanClsToken)
    {
        public int Channels => BaseChannels + ResidualChannels;
        public int Grid => ImageSize / PatchSize;

        public static Architecture Of(Options o)
        {
            if (o.Encoder is { } svg)
                return new(svg.BaseEncoder.Channels, svg.Config.Residual.OutputDim, svg.PatchSize,
                           o.ImageSize > 0 ? o.ImageSize : svg.Config.Residual.ImageSize, svg.BaseEncoder is DinoVisionTransformer);
            if (o.BaseEncoder is { } b)
                return new(b.Channels, 0, b.PatchSize, o.ImageSize > 0 ? o.ImageSize : b.DefaultImageSize, b is DinoVisionTransformer);
            var enc = o.EncoderConfig ?? SvgEncoderConfig.Released;
            int residual = o.AutoencoderCheckpointPath is null ? 0 : enc.Residual.OutputDim;
            int size = o.ImageSize > 0 ? o.ImageSize : residual > 0 ? enc.Residual.ImageSize : 256;
            return new(o.DinoConfig.EmbedDim, residual, o.DinoConfig.PatchSize, size, true);
        }
    }
}

/// <summary>
/// The fitted SVG featurizer: adds the requested feature columns, computed in batches of
/// <see cref="SvgTransformerBase.BatchSize"/> rows (one forward pass per batch). Works with
/// <c>PredictionEngine</c> (one row at a time). Save with <see cref="SvgModel"/> or <see cref="SvgTransformerBase.Save(string)"/>.
/// </summary>
public sealed class SvgFeaturizerTransformer : SvgTransformerBase
{
    internal const string Kind = "SvgFeaturizer";
    const string Component = "SvgFeaturizer";

    readonly SvgFeaturizerEstimator.Options _options;
    readonly FeatureModel _model;
    readonly SvgFeaturizerEstimator.Architecture _shape;
    double[]? _mean, _std;

    internal SvgFeaturizerTransformer(MLContext ml, SvgFeaturizerEstimator.Options options, FeatureModel model) : base(ml, Component)
    {
        _options = options;
        _model = model;
        _shape = model.Shape(options);
        if (_options.ClsTokenColumnName is not null && model.Base is not DinoVisionTransformer)
            throw new ArgumentException($"ClsTokenColumnName needs a DINOv3 base encoder; {model.Base.Name} has no class token.");
        BatchSize = options.BatchSize > 0 ? options.BatchSize : SvgHost.DefaultBatchSize(model.Device);
    }

    /// <inheritdoc/>
    public override int BatchSize { get; }

    private protected override bool SkipBadRows => _options.SkipBadRows;

    internal override string ArchiveKind => Kind;

    /// <summary>The image column read.</summary>
    public string InputColumnName => _options.InputColumnName;

    /// <summary>The feature map column, or null when the featurizer does not output it.</summary>
    public string? FeatureMapColumnName => _options.FeatureMapColumnName;

    /// <summary>The square encoder input size images are resized to.</summary>
    public int ImageSize => _shape.ImageSize;

    /// <summary>SHA-256 over the encoder weights and the learned alignment (feature-cache keys).</summary>
    internal string WeightsFingerprint() =>
        Svg.ML.Data.FeatureCacheKey.FingerprintWeights(_model.Svg ?? _model.Base.Module) + "|" + (_model.AlignmentStats?.ToString() ?? "none");

    /// <summary>The settings that determine the features (feature-cache keys).</summary>
    internal string SettingsDescription() =>
        $"{_model.Base.Name} channels={_shape.Channels} grid={_shape.Grid} size={_shape.ImageSize} resize={_options.Resize} " +
        $"alpha={_options.Alpha} alignment={_options.Alignment}";

    /// <summary>The feature map shape [C, h, w].</summary>
    public IReadOnlyList<int> FeatureShape => new[] { _shape.Channels, _shape.Grid, _shape.Grid };

    /// <summary>The device the model runs on.</summary>
    public Device Device => _model.Device;

    /// <summary>The residual alignment used.</summary>
    public ResidualAlignment Alignment => _options.Alignment;

    /// <summary>The residual alignment statistics learned by Fit (null without residual channels or with batch alignment).</summary>
    public AlignmentStatistics? AlignmentStatistics => _model.AlignmentStats;

    /// <summary>Per-channel mean of the feature map learned by Fit (C values), for the diffusion model's normalisation.</summary>
    public IReadOnlyList<double> ChannelMean => _mean ?? throw new InvalidOperationException("not fitted");

    /// <summary>Per-channel unbiased std of the feature map learned by Fit (C values).</summary>
    public IReadOnlyList<double> ChannelStd => _std ?? throw new InvalidOperationException("not fitted");

    /// <summary>The per-channel statistics as [1, 1, C] float32 tensors (the official <c>dinov3_sp_mean</c>/<c>_std</c> layout).</summary>
    public (Tensor Mean, Tensor Std) ChannelStatisticsTensors() =>
        (tensor(ChannelMean.Select(v => (float)v).ToArray()).reshape(1, 1, -1), tensor(ChannelStd.Select(v => (float)v).ToArray()).reshape(1, 1, -1));

    /// <summary>The learned per-channel statistics as the diffusion model's feature normaliser (the caller owns it).</summary>
    public Svg.ML.Diffusion.FeatureNormalizer ToFeatureNormalizer()
    {
        var (mean, std) = ChannelStatisticsTensors();
        using (mean)
        using (std)
            return new Svg.ML.Diffusion.FeatureNormalizer(mean, std);
    }

    internal static IReadOnlyList<OutputColumn> OutputColumns(SvgFeaturizerEstimator.Options o, SvgFeaturizerEstimator.Architecture a)
    {
        var list = new List<OutputColumn>();
        if (o.FeatureMapColumnName is { } m) list.Add(new(m, new VectorDataViewType(NumberDataViewType.Single, a.Channels, a.Grid, a.Grid)));
        if (o.PooledColumnName is { } p) list.Add(new(p, new VectorDataViewType(NumberDataViewType.Single, a.Channels)));
        if (o.ClsTokenColumnName is { } c) list.Add(new(c, new VectorDataViewType(NumberDataViewType.Single, a.BaseChannels)));
        return list;
    }

    internal static DataViewSchema.Column CheckInput(SvgFeaturizerEstimator.Options o, DataViewSchema schema)
    {
        var col = schema.GetColumnOrNull(o.InputColumnName) ?? throw SchemaErrors.Missing("image input", o.InputColumnName);
        if (col.Type is not ImageDataViewType)
            throw SchemaErrors.WrongType("image input", o.InputColumnName, "Image (MLImage, e.g. from LoadImages)", col.Type);
        return col;
    }

    private protected override IReadOnlyList<OutputColumn> GetOutputColumns(DataViewSchema inputSchema)
    {
        CheckInput(_options, inputSchema);
        return OutputColumns(_options, _shape);
    }

    private protected override BatchKernel CreateKernel(DataViewSchema inputSchema) => new Kernel(this, CheckInput(_options, inputSchema));

    /// <summary>
    /// Featurizes images directly (no IDataView): RGB [B, 3, H, W] in [0, 1] (any H, W; resized like the pipeline) →
    /// the feature map [B, C, h, w] on <see cref="Device"/>. The caller owns the result.
    /// </summary>
    public Tensor FeaturizeTensor(Tensor rgb01)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var x = ImageTensors.ToSquare(rgb01.to(_model.Device), _shape.ImageSize, _options.Resize);
        var (map, _) = _model.Forward(x, needMap: true, needCls: false);
        return map!.MoveToOuterDisposeScope();
    }

    /// <summary>Featurizes images directly, in batches of <see cref="SvgTransformerBase.BatchSize"/>: the feature maps [N, C, h, w] (CPU).</summary>
    public Tensor Featurize(IReadOnlyList<MLImage> images)
    {
        var parts = new List<Tensor>();
        try
        {
            for (int i = 0; i < images.Count; i += BatchSize)
            {
                using var scope = NewDisposeScope();
                using var _ = no_grad();
                var batch = images.Skip(i).Take(BatchSize).ToList();
                var rgb = MLImageTensors.FromImages(batch, _shape.ImageSize, _options.Resize, _options.Alpha, _model.Device);
                var (map, _) = _model.Forward(rgb, needMap: true, needCls: false);
                parts.Add(map!.cpu().MoveToOuterDisposeScope());
            }
            return cat(parts, 0);
        }
        finally { foreach (var p in parts) p.Dispose(); }
    }

    // ---- Fit: statistics pass ----

    internal void LearnStatistics(IDataView input)
    {
        var imageCol = CheckInput(_options, input.Schema);
        var moments = new ChannelMoments();
        var align = new AlignmentStatisticsAccumulator();
        bool stored = _model.Svg is not null && _options.Alignment == ResidualAlignment.Stored;
        long max = _options.MaxStatisticsRows > 0 ? _options.MaxStatisticsRows : long.MaxValue;
        long rows = 0, skipped = 0;
        using (var cursor = input.GetRowCursor(new[] { imageCol }))
        using (var reader = new ImageReader(imageCol))
        {
            reader.Bind(cursor);
            var staged = new List<MLImageTensors.StagedImage>();
            void Flush()
            {
                if (staged.Count == 0) return;
                using var scope = NewDisposeScope();
                using var _ = no_grad();
                var rgb = MLImageTensors.ToRgb01(staged, _shape.ImageSize, _options.Resize, _options.Alpha, _model.Device);
                foreach (var s in staged) s.Dispose();
                staged.Clear();
                var (h, r, _, _) = _model.Parts(rgb, needCls: false);
                if (r is null) moments.Add(h);
                else if (stored) { align.Add(h, r); moments.Add(cat(new[] { h, r }, 1)); }
                else moments.Add(cat(new[] { h, _model.Align(h, r) }, 1));
            }
            try
            {
                while (rows < max && cursor.MoveNext())
                {
                    try { staged.Add(reader.Stage()); rows++; }
                    catch (BadValueException e)
                    {
                        if (!_options.SkipBadRows) throw new SvgDataException(e.ColumnName, cursor.Position, e.Message, e.InnerException);
                        skipped++;
                    }
                    if (staged.Count >= BatchSize) Flush();
                }
                Flush();
            }
            finally { foreach (var s in staged) s.Dispose(); }
        }
        if (rows < 2)
            throw new InvalidOperationException($"{Component}: Fit needs at least 2 usable images in column '{_options.InputColumnName}' to learn its statistics; it got {rows}.");
        var (mean, std) = moments.Result();
        moments.Dispose();
        if (stored)
        {
            var a = align.ToStatistics();
            _model.AlignmentStats = a;
            // The stored alignment is the affine map r' = k·r + (μ_base − k·μ_res), k = σ_base / (σ_res + eps), applied
            // per element: the residual channels' statistics follow exactly from those of the raw residual.
            double k = a.BaseStd / (a.ResidualStd + _model.AlignmentEps), b = a.BaseMean - k * a.ResidualMean;
            for (int c = _model.Base.Channels; c < mean.Length; c++) { mean[c] = k * mean[c] + b; std[c] = Math.Abs(k) * std[c]; }
        }
        _mean = mean; _std = std;
        SvgHost.Info(Context, Component,
            $"fitted on {rows} image(s){(skipped > 0 ? $", skipped {skipped} bad row(s)" : "")}: features [{string.Join(", ", FeatureShape)}] on {_model.Device}" +
            (_model.AlignmentStats is { } st ? $"; alignment base {st.BaseMean:G4}±{st.BaseStd:G4}, residual {st.ResidualMean:G4}±{st.ResidualStd:G4}" : ""));
    }

    // ---- Persistence ----

    private protected override void SaveContents(SvgArchive.Writer w)
    {
        var o = _options;
        w.Manifest["options"] = new JsonObject
        {
            ["inputColumnName"] = o.InputColumnName,
            ["featureMapColumnName"] = o.FeatureMapColumnName,
            ["pooledColumnName"] = o.PooledColumnName,
            ["clsTokenColumnName"] = o.ClsTokenColumnName,
            ["imageSize"] = _shape.ImageSize,
            ["resize"] = o.Resize.ToString(),
            ["alpha"] = o.Alpha.ToString(),
            ["alignment"] = o.Alignment.ToString(),
            ["batchSize"] = o.BatchSize,
            ["skipBadRows"] = o.SkipBadRows,
        };
        _model.Save(w);
        w.Manifest["channelMean"] = SvgArchive.ToNode(_mean);
        w.Manifest["channelStd"] = SvgArchive.ToNode(_std);
    }

    /// <summary>Loads a featurizer saved by <see cref="SvgTransformerBase.Save(string)"/>.</summary>
    public static SvgFeaturizerTransformer Load(MLContext mlContext, string path)
    {
        using var f = File.OpenRead(path);
        return Load(mlContext, f);
    }

    /// <summary>Loads a featurizer saved by <see cref="SvgTransformerBase.Save(Stream)"/>; device from the MLContext.</summary>
    public static SvgFeaturizerTransformer Load(MLContext mlContext, Stream stream)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        using var r = SvgArchive.Reader.Open(stream, Kind);
        var m = r.Manifest["options"]!.AsObject();
        var options = new SvgFeaturizerEstimator.Options
        {
            InputColumnName = m["inputColumnName"]!.GetValue<string>(),
            FeatureMapColumnName = m["featureMapColumnName"]?.GetValue<string>(),
            PooledColumnName = m["pooledColumnName"]?.GetValue<string>(),
            ClsTokenColumnName = m["clsTokenColumnName"]?.GetValue<string>(),
            ImageSize = m["imageSize"]!.GetValue<int>(),
            Resize = Enum.Parse<ResizeMode>(m["resize"]!.GetValue<string>()),
            Alpha = Enum.Parse<SvgAlphaMode>(m["alpha"]!.GetValue<string>()),
            Alignment = Enum.Parse<ResidualAlignment>(m["alignment"]!.GetValue<string>()),
            BatchSize = m["batchSize"]!.GetValue<int>(),
            SkipBadRows = m["skipBadRows"]!.GetValue<bool>(),
        };
        var device = SvgHost.ResolveDevice(mlContext);
        var model = FeatureModel.Load(r, device);
        try
        {
            var t = new SvgFeaturizerTransformer(mlContext, options, model)
            {
                _mean = SvgArchive.FromNode<double[]>(r.Manifest["channelMean"], "channelMean"),
                _std = SvgArchive.FromNode<double[]>(r.Manifest["channelStd"], "channelStd"),
            };
            return t;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _model.Dispose();
    }

    // ---- The batch kernel ----

    /// <summary>Reads an image column into staged pixel tensors, turning bad values into <see cref="BadValueException"/>.</summary>
    sealed class ImageReader : IDisposable
    {
        readonly DataViewSchema.Column _column;
        ValueGetter<MLImage>? _getter;
        MLImage? _image;     // one variable reused across rows: upstream getters dispose the previous image (ML.NET convention)

        public ImageReader(DataViewSchema.Column column) => _column = column;

        public void Bind(DataViewRow row) => _getter = row.GetGetter<MLImage>(_column);

        public MLImageTensors.StagedImage Stage()
        {
            try { _getter!(ref _image!); }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                _image = null;
                throw new BadValueException(_column.Name, Describe(e), e);
            }
            if (_image is null) throw new BadValueException(_column.Name, "no image (empty or missing path).");
            try { return MLImageTensors.Stage(_image); }
            catch (Exception e) when (e is InvalidDataException or InvalidOperationException)
            {
                throw new BadValueException(_column.Name, "unusable image: " + e.Message, e);
            }
        }

        static string Describe(Exception e) => e switch
        {
            FileNotFoundException f => $"image file not found ({f.FileName ?? f.Message}).",
            DirectoryNotFoundException d => $"image file not found ({d.Message}).",
            ArgumentException { ParamName: "imageStream" } => "the image file could not be decoded (zero-byte or corrupt).",
            _ => $"{e.GetType().Name}: {e.Message}",
        };

        public void Dispose() { }
    }

    sealed class Kernel : BatchKernel
    {
        readonly SvgFeaturizerTransformer _t;
        readonly ImageReader _reader;
        readonly List<MLImageTensors.StagedImage> _staged = new();

        public Kernel(SvgFeaturizerTransformer t, DataViewSchema.Column column)
        {
            _t = t;
            _reader = new ImageReader(column);
            InputColumns = new[] { column };
        }

        public override IReadOnlyList<DataViewSchema.Column> InputColumns { get; }
        public override int StagedCount => _staged.Count;
        public override void Bind(DataViewRow row) => _reader.Bind(row);
        public override void Stage(long row) => _staged.Add(_reader.Stage());

        public override void Reset()
        {
            foreach (var s in _staged) s.Dispose();
            _staged.Clear();
        }

        public override OutputBuffer?[] Run(bool[] active)
        {
            var o = _t._options;
            var outputs = OutputColumns(o, _t._shape);
            bool Wants(string? name) => name is not null && outputs.Select((c, i) => (c, i)).Any(x => x.c.Name == name && active[x.i]);
            bool wantMap = Wants(o.FeatureMapColumnName), wantPooled = Wants(o.PooledColumnName), wantCls = Wants(o.ClsTokenColumnName);
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var rgb = MLImageTensors.ToRgb01(_staged, _t._shape.ImageSize, o.Resize, o.Alpha, _t._model.Device);
            var (map, cls) = _t._model.Forward(rgb, needMap: wantMap || wantPooled, needCls: wantCls);
            var result = new OutputBuffer?[outputs.Count];
            for (int j = 0; j < outputs.Count; j++)
            {
                if (!active[j]) continue;
                string name = outputs[j].Name;
                Tensor t = name == o.FeatureMapColumnName ? map!
                         : name == o.PooledColumnName ? map!.mean(new long[] { 2, 3 })
                         : cls!;
                result[j] = ToBuffer(t);
            }
            return result;
        }

        static VectorBuffer ToBuffer(Tensor t)
        {
            using var c = t.detach().to(ScalarType.Float32).cpu().contiguous();
            var data = new float[c.numel()];
            MemoryMarshal.Cast<byte, float>(c.bytes).CopyTo(data);
            return new VectorBuffer(data, (int)(c.numel() / c.shape[0]));
        }

        public override void Dispose() => Reset();
    }
}

/// <summary>The featurizer's TorchSharp side: the frozen base encoder, the optional residual encoder and the alignment.</summary>
internal sealed class FeatureModel : IDisposable
{
    public IFrozenEncoder Base { get; }
    public SvgEncoder? Svg { get; }
    public Device Device { get; }
    public AlignmentStatistics? AlignmentStats { get; set; }
    public ResidualAlignment Alignment { get; }
    public double AlignmentEps => Svg?.Config.AlignmentEps ?? 1e-6;
    readonly bool _owned;

    FeatureModel(IFrozenEncoder baseEncoder, SvgEncoder? svg, ResidualAlignment alignment, Device device, bool owned)
    {
        Base = baseEncoder; Svg = svg; Alignment = alignment; Device = device; _owned = owned;
        Base.Module.to(device);
        Base.Module.eval();
        if (svg is not null) { svg.to(device); svg.eval(); }
    }

    public SvgFeaturizerEstimator.Architecture Shape(SvgFeaturizerEstimator.Options o)
    {
        int size = o.ImageSize > 0 ? o.ImageSize : Svg?.Config.Residual.ImageSize ?? Base.DefaultImageSize;
        if (size % Base.PatchSize != 0)
            throw new ArgumentException($"ImageSize {size} is not a multiple of the encoder's patch size {Base.PatchSize}.");
        if (Svg is not null && size != Svg.Config.Residual.ImageSize)
            throw new ArgumentException($"The residual encoder only accepts {Svg.Config.Residual.ImageSize}×{Svg.Config.Residual.ImageSize} images; ImageSize is {size}.");
        return new(Base.Channels, Svg?.Config.Residual.OutputDim ?? 0, Base.PatchSize, size, Base is DinoVisionTransformer);
    }

    /// <summary>Builds the model from the options (in-memory modules or checkpoints). Checkpoint errors name the file.</summary>
    public static FeatureModel Create(SvgFeaturizerEstimator.Options o, Device device)
    {
        if (o.Encoder is { } svg) return new FeatureModel(svg.BaseEncoder, svg, o.Alignment, device, owned: false);
        if (o.BaseEncoder is { } b) return new FeatureModel(b, null, o.Alignment, device, owned: false);

        SvgAutoencoderWeights? ae = null;
        DinoVisionTransformer? dino = null;
        SvgEncoder? encoder = null;
        try
        {
            if (o.AutoencoderCheckpointPath is { } aePath)
            {
                try { ae = OfficialCheckpoints.LoadSvgAutoencoder(aePath); }
                catch (CheckpointFormatException e) { throw NotFitting(aePath, "SVG autoencoder", e); }
            }
            dino = new DinoVisionTransformer(o.DinoConfig);
            if (o.DinoCheckpointPath is { } dinoPath)
            {
                Dictionary<string, Tensor> w;
                try { w = OfficialCheckpoints.LoadDinoV3(dinoPath, o.DinoConfig.NumHeads, o.DinoConfig.RopeBase); }
                catch (CheckpointFormatException e) { throw NotFitting(dinoPath, o.DinoConfig.Name, e); }
                try { LoadChecked(dino, w, dinoPath, o.DinoConfig.Name); }
                finally { foreach (var t in w.Values) t.Dispose(); }
            }
            else if (ae is { Dino.Count: > 0 })
                LoadChecked(dino, ae.Dino, o.AutoencoderCheckpointPath!, o.DinoConfig.Name);
            else
                throw new ArgumentException(
                    $"No DINOv3 weights: set DinoCheckpointPath (the autoencoder checkpoint '{o.AutoencoderCheckpointPath}' does not carry encoder.* weights).");

            if (ae is not null)
            {
                var cfg = o.EncoderConfig ?? SvgEncoderConfig.Released;
                encoder = new SvgEncoder(dino, cfg);
                var weights = new Dictionary<string, Tensor>(encoder.state_dict().Where(kv => kv.Key.StartsWith("encoder.", StringComparison.Ordinal)));
                foreach (var (k, v) in ae.Residual) weights["extra_vit." + k] = v;
                foreach (var (k, v) in ae.NormVit) weights["norm_vit." + k] = v;
                if (ae.MaskToken is not null) weights["mask_token"] = ae.MaskToken;
                LoadChecked(encoder, weights, o.AutoencoderCheckpointPath!, $"SVG encoder (residual {cfg.Residual.NumLayers} layers, width {cfg.Residual.HiddenDim}, {cfg.Residual.OutputDim} channels)");
            }
            return new FeatureModel(dino, encoder, o.Alignment, device, owned: true);
        }
        catch
        {
            encoder?.Dispose();
            dino?.Dispose();
            throw;
        }
        finally
        {
            if (ae is not null) foreach (var t in ae.All.Values) t.Dispose();
        }
    }

    static void LoadChecked(nn.Module module, IReadOnlyDictionary<string, Tensor> weights, string path, string what)
    {
        try { StateDict.Load(module, weights, strict: true, source: path); }
        catch (CheckpointMismatchException e) { throw NotFitting(path, what, e); }
    }

    internal static ArgumentException NotFitting(string path, string what, Exception e) =>
        new($"The checkpoint '{path}' does not fit the requested {what}: {e.Message}", e);

    /// <summary>
    /// RGB [B, 3, S, S] in [0, 1] → base features [B, C, N], raw residual features [B, 8, N] (or null), the class token
    /// (when asked; DINOv3 only) and the grid.
    /// </summary>
    public (Tensor Base, Tensor? Residual, Tensor? Cls, (int H, int W) Grid) Parts(Tensor rgb01, bool needCls)
    {
        if (needCls)
        {
            var dino = Base as DinoVisionTransformer ?? throw new InvalidOperationException($"{Base.Name} has no class token.");
            var f = dino.ForwardFeatures(Base.Preprocess(rgb01));
            var h = f.XNormPatchTokens.transpose(1, 2);
            var r = Svg?.ResidualEncoder.forward(ImageNetNormalization.Normalize(rgb01));
            return (h, r, f.XNormClsToken, (f.GridHeight, f.GridWidth));
        }
        if (Svg is not null)
        {
            var (h, r, gh, gw) = Svg.EncodeParts(rgb01);
            return (h, r, null, (gh, gw));
        }
        var grid = Base.EncodeGrid(Base.Preprocess(rgb01));
        return (grid.flatten(2), null, null, ((int)grid.shape[2], (int)grid.shape[3]));
    }

    /// <summary>The residual alignment of the featurizer (stored statistics, current batch, or none).</summary>
    public Tensor Align(Tensor h, Tensor r) => Alignment switch
    {
        ResidualAlignment.Stored => (AlignmentStats ?? throw new InvalidOperationException("The alignment statistics are not learned yet (Fit).")).Apply(r, AlignmentEps),
        ResidualAlignment.BatchStatistics => SvgEncoder.MatchDistribution(h, r, AlignmentEps),
        _ => r,
    };

    /// <summary>RGB [B, 3, S, S] in [0, 1] → feature map [B, C, h, w] (when asked) and class token [B, D] (when asked).</summary>
    public (Tensor? Map, Tensor? Cls) Forward(Tensor rgb01, bool needMap, bool needCls)
    {
        var (h, r, cls, (gh, gw)) = Parts(rgb01, needCls);
        if (!needMap) return (null, cls);
        var z = r is null ? h : cat(new[] { h, Align(h, r) }, 1);
        return (z.reshape(z.shape[0], z.shape[1], gh, gw), cls);
    }

    // ---- persistence: configs in the manifest, weights under "base." or "svg." ----

    public void Save(SvgArchive.Writer w)
    {
        switch (Base)
        {
            case DinoVisionTransformer dino:
                w.Manifest["baseKind"] = "dinov3";
                w.Manifest["dinoConfig"] = SvgArchive.ToNode(dino.Config);
                w.Manifest["dinoImageSize"] = dino.DefaultImageSize;
                break;
            case ResNet18 resnet:
                w.Manifest["baseKind"] = "resnet18";
                w.Manifest["resnetConfig"] = SvgArchive.ToNode(resnet.Config);
                w.Manifest["resnetGrid"] = resnet.GridLayer.ToString();
                break;
            default:
                throw new NotSupportedException(
                    $"Featurizers over {Base.Name} ({Base.GetType().Name}) cannot be saved: only DINOv3 and ResNet18 bases can.");
        }
        if (Svg is not null)
        {
            w.Manifest["encoderConfig"] = SvgArchive.ToNode(Svg.Config);
            w.AddTensors("svg.", Svg.state_dict());
        }
        else w.AddTensors("base.", Base.Module.state_dict());
        if (AlignmentStats is not null) w.Manifest["alignmentStatistics"] = SvgArchive.ToNode(AlignmentStats);
    }

    /// <summary>The base encoder named by the manifest (archives before "baseKind" existed hold DINOv3).</summary>
    static IFrozenEncoder CreateBase(SvgArchive.Reader r) => (r.Manifest["baseKind"]?.GetValue<string>() ?? "dinov3") switch
    {
        "dinov3" => new DinoVisionTransformer(SvgArchive.FromNode<DinoV3Config>(r.Manifest["dinoConfig"], "dinoConfig"),
                                              r.Manifest["dinoImageSize"]?.GetValue<int>() ?? 256),
        "resnet18" => new ResNet18(SvgArchive.FromNode<ResNetConfig>(r.Manifest["resnetConfig"], "resnetConfig"),
                                   Enum.Parse<ResNetGridLayer>(r.Manifest["resnetGrid"]!.GetValue<string>())),
        var kind => throw new InvalidDataException($"Saved SvgFeaturizer: unknown base encoder kind '{kind}'."),
    };

    public static FeatureModel Load(SvgArchive.Reader r, Device device)
    {
        var baseEncoder = CreateBase(r);
        SvgEncoder? svg = null;
        try
        {
            var align = Enum.Parse<ResidualAlignment>(r.Manifest["options"]!["alignment"]!.GetValue<string>());
            if (r.Manifest["encoderConfig"] is { } ec)
            {
                svg = new SvgEncoder(baseEncoder, SvgArchive.FromNode<SvgEncoderConfig>(ec, "encoderConfig"));
                StateDict.Load(svg, r.WithPrefix("svg."), strict: true, source: "saved SvgFeaturizer");
            }
            else StateDict.Load(baseEncoder.Module, r.WithPrefix("base."), strict: true, source: "saved SvgFeaturizer");
            return new FeatureModel(baseEncoder, svg, align, device, owned: true)
            {
                AlignmentStats = r.Manifest["alignmentStatistics"] is { } a ? SvgArchive.FromNode<AlignmentStatistics>(a, "alignmentStatistics") : null,
            };
        }
        catch
        {
            svg?.Dispose();
            baseEncoder.Module.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        if (!_owned) return;
        Svg?.Dispose();
        Base.Module.Dispose();
    }
}
