using Microsoft.ML;

namespace Svg.ML.MLNet;

/// <summary>
/// ML.NET entry points of editing and interpolation: <c>mlContext.Transforms.SvgEdit(generator, options)</c> and
/// <c>mlContext.Transforms.SvgInterpolate(generator, options)</c>. Both need no training: <c>Fit</c> checks the input
/// schema and returns the transformer, which uses the given generator (it stays the caller's; a loaded model
/// owns its own copy).
/// </summary>
public static class SvgEditingCatalog
{
    /// <summary>Edits a feature column with SDEdit and trajectory inversion (see <see cref="SvgEditTransformer"/>).</summary>
    public static SvgEditingEstimator<SvgEditTransformer> SvgEdit(this TransformsCatalog catalog, SvgGenerator generator, SvgEditTransformer.Options? options = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(generator);
        var o = (options ?? new()).Clone();
        var context = new ContextRef(catalog);
        return new SvgEditingEstimator<SvgEditTransformer>(() => new SvgEditTransformer(context.Resolve(), generator, o, ownsGenerator: false),
                                                           new[] { o.FeatureColumnName, o.TargetLabelColumnName }.Concat(new[] { o.MaskColumnName, o.SourceLabelColumnName, o.SeedColumnName }.OfType<string>()),
                                                           SvgEditTransformer.OutputColumns(o, generator));
    }

    /// <summary>Samples interpolants between two seeds' noises per row (see <see cref="SvgInterpolationTransformer"/>).</summary>
    public static SvgEditingEstimator<SvgInterpolationTransformer> SvgInterpolate(this TransformsCatalog catalog, SvgGenerator generator, SvgInterpolationTransformer.Options? options = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(generator);
        var o = (options ?? new()).Clone();
        var context = new ContextRef(catalog);
        return new SvgEditingEstimator<SvgInterpolationTransformer>(() => new SvgInterpolationTransformer(context.Resolve(), generator, o, ownsGenerator: false),
                                                                    new[] { o.LabelColumnName, o.SeedAColumnName, o.SeedBColumnName },
                                                                    SvgInterpolationTransformer.OutputColumns(o, generator));
    }
}

/// <summary>The estimator of an editing transformer: nothing to train; <c>Fit</c> validates the input and returns the transformer.</summary>
public sealed class SvgEditingEstimator<T> : IEstimator<T> where T : SvgTransformerBase
{
    readonly Func<T> _create;
    readonly string[] _inputs;
    readonly IReadOnlyList<OutputColumn> _outputs;

    internal SvgEditingEstimator(Func<T> create, IEnumerable<string> inputs, IReadOnlyList<OutputColumn> outputs)
    {
        _create = create;
        _inputs = inputs.ToArray();
        _outputs = outputs;
        using var probe = create();     // option errors surface here, when the pipeline is built
    }

    /// <summary>The transformer; the input schema is checked (errors name the column).</summary>
    public T Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var t = _create();
        try { t.GetOutputSchema(input.Schema); }
        catch { t.Dispose(); throw; }
        return t;
    }

    /// <summary>The input shape plus the output columns; the input columns must be present.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        foreach (string name in _inputs)
            if (!SchemaShapes.TryFind(inputSchema, name, out _)) throw SchemaErrors.Missing("input", name);
        return SchemaShapes.With(inputSchema, _outputs.Select(o => (o.Name, o.Type)));
    }
}
