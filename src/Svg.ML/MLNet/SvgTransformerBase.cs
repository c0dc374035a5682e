using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Svg.ML.MLNet;

/// <summary>
/// Base of the Svg.ML transformers: adds columns computed in batches by a TorchSharp model. <see cref="Transform"/>
/// is lazy; its cursor reads ahead on a second cursor over the same input to fill a batch, computes the batch in one
/// forward pass and then serves the rows one by one (ML.NET itself never batches). <see cref="GetRowToRowMapper"/>
/// serves single rows (PredictionEngine). Models save with <see cref="Save(string)"/> or, inside a chain,
/// <see cref="SvgModel.Save(MLContext, ITransformer, DataViewSchema?, string)"/>.
/// </summary>
public abstract class SvgTransformerBase : ITransformer, IDisposable
{
    private protected readonly MLContext Context;
    private protected readonly string ComponentName;
    readonly object _reportGate = new();
    IReadOnlyList<SvgSkippedRow> _skipped = Array.Empty<SvgSkippedRow>();
    long _skippedTotal;

    private protected SvgTransformerBase(MLContext context, string componentName)
    {
        Context = context ?? throw new ArgumentNullException(nameof(context));
        ComponentName = componentName;
    }

    /// <summary>Rows per forward pass.</summary>
    public abstract int BatchSize { get; }

    /// <summary>Whether bad rows are dropped (and counted) instead of failing the pipeline.</summary>
    private protected virtual bool SkipBadRows => false;

    /// <summary>The rows skipped by the most recent complete pass over the data (empty unless bad rows are skipped).</summary>
    public IReadOnlyList<SvgSkippedRow> LastSkippedRows { get { lock (_reportGate) return _skipped; } }

    /// <summary>Rows skipped over all passes since this transformer was created.</summary>
    public long TotalSkippedRows => Interlocked.Read(ref _skippedTotal);

    /// <summary>The columns added to <paramref name="inputSchema"/>; validates the input columns (errors name them).</summary>
    private protected abstract IReadOnlyList<OutputColumn> GetOutputColumns(DataViewSchema inputSchema);

    /// <summary>A fresh compute kernel for one cursor or row mapper over <paramref name="inputSchema"/>.</summary>
    private protected abstract BatchKernel CreateKernel(DataViewSchema inputSchema);

    /// <summary>Writes this transformer's files (manifest, weights) into its archive.</summary>
    private protected abstract void SaveContents(SvgArchive.Writer archive);

    /// <summary>Kind name written in the archive manifest.</summary>
    internal abstract string ArchiveKind { get; }

    bool ITransformer.IsRowToRowMapper => true;

    /// <inheritdoc/>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return BuildOutputSchema(inputSchema, GetOutputColumns(inputSchema));
    }

    static DataViewSchema BuildOutputSchema(DataViewSchema input, IReadOnlyList<OutputColumn> outputs)
    {
        var b = new DataViewSchema.Builder();
        b.AddColumns(input);
        foreach (var o in outputs) b.AddColumn(o.Name, o.Type);
        return b.ToSchema();
    }

    /// <inheritdoc/>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var outputs = GetOutputColumns(input.Schema);
        return new BatchedDataView(this, input, outputs, BuildOutputSchema(input.Schema, outputs));
    }

    /// <inheritdoc/>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var outputs = GetOutputColumns(inputSchema);
        return new RowMapper(this, inputSchema, outputs, BuildOutputSchema(inputSchema, outputs));
    }

    /// <summary>ML.NET's model format cannot hold third-party transformers; this throws and names the call to use.</summary>
    void ICanSaveModel.Save(ModelSaveContext ctx) =>
        throw new NotSupportedException(
            $"{GetType().Name} cannot be saved with mlContext.Model.Save: ML.NET's model format is closed to third-party " +
            "transformers. Save the model with Svg.ML.MLNet.SvgModel.Save(mlContext, model, inputSchema, path) and load it " +
            "with SvgModel.Load(mlContext, path, out inputSchema); it also saves chains that mix ML.NET and Svg.ML transformers.");

    /// <summary>Saves this transformer alone to a zip (manifest with format version, safetensors weights, options).</summary>
    public void Save(string path)
    {
        string tmp = path + ".tmp";
        using (var f = File.Create(tmp)) Save(f);
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Saves this transformer alone to a zip stream.</summary>
    public void Save(Stream stream)
    {
        using var w = new SvgArchive.Writer(stream, ArchiveKind);
        SaveContents(w);
    }

    /// <summary>Releases the TorchSharp modules.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing) { }

    void ReportPass(List<SvgSkippedRow> skipped, long rows)
    {
        lock (_reportGate) _skipped = skipped;
        if (skipped.Count == 0) return;
        Interlocked.Add(ref _skippedTotal, skipped.Count);
        var first = string.Join("; ", skipped.Take(5).Select(s => $"row {s.Row} ({s.ColumnName}): {s.Reason}"));
        SvgHost.Warning(Context, ComponentName,
            $"skipped {skipped.Count} bad row(s) of {rows}: {first}{(skipped.Count > 5 ? "; ..." : "")}");
    }

    // ------------------------------------------------------------------------------------------------------------
    // The lazy data view and its look-ahead batching cursor.

    sealed class BatchedDataView : IDataView
    {
        readonly SvgTransformerBase _parent;
        readonly IDataView _input;
        readonly IReadOnlyList<OutputColumn> _outputs;

        public BatchedDataView(SvgTransformerBase parent, IDataView input, IReadOnlyList<OutputColumn> outputs, DataViewSchema schema)
        {
            _parent = parent; _input = input; _outputs = outputs; Schema = schema;
        }

        public DataViewSchema Schema { get; }

        // Rows come in input order: the look-ahead cursor must see the rows the main cursor sees.
        public bool CanShuffle => false;

        public long? GetRowCount() => _parent.SkipBadRows ? null : _input.GetRowCount();

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        {
            int nIn = _input.Schema.Count;
            var needed = columnsNeeded.Select(c => c.Index).ToHashSet();
            var active = new bool[_outputs.Count];
            for (int j = 0; j < active.Length; j++) active[j] = needed.Contains(nIn + j);
            var inputNeeded = needed.Where(i => i < nIn).Select(i => _input.Schema[i]).ToList();
            BatchKernel? kernel = null;
            DataViewRowCursor? main = null, ahead = null;
            try
            {
                if (active.Any(a => a) || _parent.SkipBadRows)
                {
                    kernel = _parent.CreateKernel(_input.Schema);
                    ahead = _input.GetRowCursor(kernel.InputColumns);
                    kernel.Bind(ahead);
                }
                main = _input.GetRowCursor(inputNeeded);
                return new Cursor(_parent, this, main, ahead, kernel, active);
            }
            catch
            {
                main?.Dispose(); ahead?.Dispose(); kernel?.Dispose();
                throw;
            }
        }

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
            new[] { GetRowCursor(columnsNeeded, rand) };

        public IDataView Input => _input;
    }

    sealed class Cursor : DataViewRowCursor
    {
        readonly SvgTransformerBase _parent;
        readonly BatchedDataView _view;
        readonly DataViewRowCursor _main;
        readonly DataViewRowCursor? _ahead;
        readonly BatchKernel? _kernel;
        readonly bool[] _active;
        readonly bool _anyActive;
        readonly int _nIn;
        readonly List<SvgSkippedRow> _skipped = new();

        long _position = -1, _inputRow = -1, _aheadRow = -1;
        long _batchStart, _batchEnd;                    // input rows [start, end) covered by the current batch
        int[] _slots = Array.Empty<int>();              // per input row in the batch: its slot, or -1 (skipped)
        OutputBuffer?[] _buffers = Array.Empty<OutputBuffer?>();
        long _batchVersion;
        bool _done, _disposed;

        public Cursor(SvgTransformerBase parent, BatchedDataView view, DataViewRowCursor main, DataViewRowCursor? ahead, BatchKernel? kernel, bool[] active)
        {
            _parent = parent; _view = view; _main = main; _ahead = ahead; _kernel = kernel; _active = active;
            _anyActive = active.Any(a => a);
            _nIn = view.Input.Schema.Count;
        }

        public override DataViewSchema Schema => _view.Schema;
        public override long Position => _position;
        public override long Batch => 0;

        public override ValueGetter<DataViewRowId> GetIdGetter() => _main.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) =>
            column.Index < _nIn ? _main.IsColumnActive(_view.Input.Schema[column.Index]) : _active[column.Index - _nIn];

        public override bool MoveNext()
        {
            if (_done) return false;
            while (true)
            {
                if (!_main.MoveNext())
                {
                    _done = true;
                    _parent.ReportPass(_skipped, _inputRow + 1);
                    return false;
                }
                _inputRow++;
                if (_kernel is not null)
                {
                    if (_inputRow >= _batchEnd) FillBatch();
                    if (_slots[_inputRow - _batchStart] < 0) continue;    // a skipped bad row
                }
                _position++;
                return true;
            }
        }

        void FillBatch()
        {
            var kernel = _kernel!;
            kernel.Reset();
            _batchStart = _inputRow;
            int size = Math.Max(1, _parent.BatchSize);
            var slots = new List<int>(size);
            while (slots.Count < size && _ahead!.MoveNext())
            {
                _aheadRow++;
                try
                {
                    kernel.Stage(_aheadRow);
                    slots.Add(kernel.StagedCount - 1);
                }
                catch (BadValueException e)
                {
                    if (!_parent.SkipBadRows) throw new SvgDataException(e.ColumnName, _aheadRow, e.Message, e.InnerException);
                    _skipped.Add(new SvgSkippedRow(_aheadRow, e.ColumnName, e.Message));
                    slots.Add(-1);
                }
            }
            if (slots.Count == 0 || _aheadRow < _inputRow)
                throw new InvalidOperationException(
                    $"{_parent.ComponentName}: the input data returned fewer rows to a second cursor than to the first; " +
                    "Svg.ML transformers need an input that gives the same rows to every cursor.");
            _slots = slots.ToArray();
            _batchEnd = _batchStart + _slots.Length;
            _buffers = _anyActive && kernel.StagedCount > 0 ? kernel.Run(_active) : new OutputBuffer?[_active.Length];
            _batchVersion++;
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index < _nIn) return _main.GetGetter<TValue>(_view.Input.Schema[column.Index]);
            int j = column.Index - _nIn;
            if (!_active[j]) throw new InvalidOperationException($"Column '{column.Name}' was not requested from this cursor.");
            return Getters.Create<TValue>(column, () =>
            {
                if (_position < 0 || _done) throw new InvalidOperationException("The cursor is not on a row.");
                return (_buffers[j] ?? throw new InvalidOperationException("no output computed"), _slots[_inputRow - _batchStart]);
            });
        }

        protected override void Dispose(bool disposing)
        {
            if (_disposed) return;
            _disposed = true;
            if (disposing)
            {
                _main.Dispose();
                _ahead?.Dispose();
                _kernel?.Dispose();
            }
            base.Dispose(disposing);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Single-row mapping (PredictionEngine): a batch of one per input row.

    sealed class RowMapper : IRowToRowMapper
    {
        readonly SvgTransformerBase _parent;
        readonly IReadOnlyList<OutputColumn> _outputs;

        public RowMapper(SvgTransformerBase parent, DataViewSchema input, IReadOnlyList<OutputColumn> outputs, DataViewSchema output)
        {
            _parent = parent; InputSchema = input; _outputs = outputs; OutputSchema = output;
        }

        public DataViewSchema InputSchema { get; }
        public DataViewSchema OutputSchema { get; }

        public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
        {
            int nIn = InputSchema.Count;
            var cols = dependingColumns.ToList();
            var result = cols.Where(c => c.Index < nIn).Select(c => InputSchema[c.Index]).ToList();
            if (cols.Any(c => c.Index >= nIn))
            {
                using var k = _parent.CreateKernel(InputSchema);
                result.AddRange(k.InputColumns);
            }
            return result.DistinctBy(c => c.Index).ToList();
        }

        public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
        {
            int nIn = InputSchema.Count;
            var active = new bool[_outputs.Count];
            foreach (var c in activeColumns) if (c.Index >= nIn) active[c.Index - nIn] = true;
            BatchKernel? kernel = null;
            if (active.Any(a => a))
            {
                kernel = _parent.CreateKernel(InputSchema);
                kernel.Bind(input);
            }
            return new MappedRow(_parent, input, OutputSchema, kernel, active);
        }
    }

    sealed class MappedRow : DataViewRow
    {
        readonly SvgTransformerBase _parent;
        readonly DataViewRow _input;
        readonly BatchKernel? _kernel;
        readonly bool[] _active;
        readonly int _nIn;
        long _computedFor = long.MinValue;
        OutputBuffer?[] _buffers = Array.Empty<OutputBuffer?>();

        public MappedRow(SvgTransformerBase parent, DataViewRow input, DataViewSchema schema, BatchKernel? kernel, bool[] active)
        {
            _parent = parent; _input = input; Schema = schema; _kernel = kernel; _active = active; _nIn = input.Schema.Count;
        }

        public override DataViewSchema Schema { get; }
        public override long Position => _input.Position;
        public override long Batch => _input.Batch;
        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) =>
            column.Index < _nIn ? _input.IsColumnActive(_input.Schema[column.Index]) : _active[column.Index - _nIn];

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index < _nIn) return _input.GetGetter<TValue>(_input.Schema[column.Index]);
            int j = column.Index - _nIn;
            if (!_active[j] || _kernel is null) throw new InvalidOperationException($"Column '{column.Name}' was not requested from this row.");
            return Getters.Create<TValue>(column, () =>
            {
                long pos = _input.Position;
                if (pos != _computedFor)
                {
                    _kernel.Reset();
                    try { _kernel.Stage(pos); }
                    catch (BadValueException e) { throw new SvgDataException(e.ColumnName, pos, e.Message, e.InnerException); }
                    _buffers = _kernel.Run(_active);
                    _computedFor = pos;
                }
                return (_buffers[j] ?? throw new InvalidOperationException("no output computed"), 0);
            });
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) _kernel?.Dispose();
            base.Dispose(disposing);
        }
    }

    /// <summary>Typed getters over a batch buffer.</summary>
    static class Getters
    {
        public static ValueGetter<TValue> Create<TValue>(DataViewSchema.Column column, Func<(OutputBuffer Buffer, int Slot)> current)
        {
            if (typeof(TValue) == typeof(VBuffer<float>) && column.Type is VectorDataViewType)
            {
                ValueGetter<VBuffer<float>> g = (ref VBuffer<float> dst) =>
                {
                    var (buffer, slot) = current();
                    var v = (VectorBuffer)buffer;
                    var editor = VBufferEditor.Create(ref dst, v.Stride);
                    v.Data.AsSpan(slot * v.Stride, v.Stride).CopyTo(editor.Values);
                    dst = editor.Commit();
                };
                return (ValueGetter<TValue>)(Delegate)g;
            }
            if (typeof(TValue) == typeof(MLImage) && column.Type is Microsoft.ML.Transforms.Image.ImageDataViewType)
            {
                ValueGetter<MLImage> g = (ref MLImage dst) =>
                {
                    var (buffer, slot) = current();
                    var im = (ImageBuffer)buffer;
                    dst?.Dispose();    // ML.NET's convention for image getters (LoadImages does the same)
                    dst = MLImage.CreateFromPixels(im.Width, im.Height, MLPixelFormat.Rgba32, im.Rgba.AsSpan(slot * im.Stride, im.Stride));
                };
                return (ValueGetter<TValue>)(Delegate)g;
            }
            throw new InvalidOperationException(
                $"Column '{column.Name}' has type {column.Type}; it cannot be read as {typeof(TValue).Name}.");
        }
    }
}
