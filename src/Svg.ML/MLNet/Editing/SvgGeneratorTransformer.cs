using System.Text.Json.Nodes;
using Microsoft.ML;

namespace Svg.ML.MLNet;

/// <summary>
/// Base of the transformers that work with a trained <see cref="SvgGenerator"/> (editing, interpolation): they save
/// the generator's archive with their own settings in one manifest section, and own the generator only when loaded.
/// </summary>
public abstract class SvgGeneratorTransformer : SvgTransformerBase
{
    private protected readonly SvgGenerator G;
    readonly bool _ownsGenerator;

    private protected SvgGeneratorTransformer(MLContext ml, string componentName, SvgGenerator generator, bool ownsGenerator) : base(ml, componentName)
    {
        G = generator ?? throw new ArgumentNullException(nameof(generator));
        _ownsGenerator = ownsGenerator;
    }

    /// <summary>The generator the transformer samples with.</summary>
    public SvgGenerator Generator => G;

    /// <summary>The manifest section of this transformer's settings.</summary>
    private protected abstract string Section { get; }

    /// <summary>This transformer's settings as JSON.</summary>
    private protected abstract JsonObject SaveSettings();

    private protected sealed override void SaveContents(SvgArchive.Writer w)
    {
        G.SaveInto(w);
        w.Manifest[Section] = SaveSettings();
    }

    /// <summary>Opens an archive of <paramref name="kind"/>, loads its generator and builds the transformer from its settings.</summary>
    private protected static T Load<T>(MLContext mlContext, Stream stream, string kind, string section, Func<JsonObject, SvgGenerator, T> make)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        using var r = SvgArchive.Reader.Open(stream, kind);
        var settings = r.Manifest[section]?.AsObject() ?? throw new InvalidDataException($"the manifest lacks '{section}'.");
        var generator = SvgGenerator.FromArchive(mlContext, r);
        try { return make(settings, generator); }
        catch { generator.Dispose(); throw; }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && _ownsGenerator) G.Dispose();
    }
}
