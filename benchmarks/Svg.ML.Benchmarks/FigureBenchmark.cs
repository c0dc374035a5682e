using System.Text.Json.Nodes;

namespace Svg.ML.Benchmarks;

/// <summary>One figure of a <see cref="FigureBenchmark"/>: its unique name (the join key with the PyTorch script) and
/// how to measure it.</summary>
public sealed record FigureSpec(string Name, string Description, Func<BenchmarkOptions, JsonObject> Measure);

/// <summary>
/// A benchmark made of named figures. <c>--only</c> selects the whole benchmark by its <see cref="Name"/> or single
/// figures by their names (a trailing <c>*</c> matches a prefix); <c>--list</c> prints the figures.
/// </summary>
public abstract class FigureBenchmark : IBenchmark, IListableBenchmark
{
    /// <inheritdoc/>
    public abstract string Name { get; }

    /// <summary>The figures, in run order.</summary>
    public abstract IEnumerable<FigureSpec> Figures { get; }

    /// <inheritdoc/>
    public IEnumerable<(string Name, string Description)> List() => Figures.Select(f => (f.Name, f.Description));

    /// <inheritdoc/>
    public bool Selects(BenchmarkOptions options) =>
        options.Only is null || options.Matches(Name) || Figures.Any(f => options.Matches(f.Name));

    /// <inheritdoc/>
    public IEnumerable<JsonObject> Run(BenchmarkOptions options)
    {
        bool all = options.Only is null || options.Matches(Name);
        try
        {
            foreach (var figure in Figures)
            {
                if (!all && !options.Matches(figure.Name)) continue;
                Console.Error.WriteLine($"{figure.Name}: {figure.Description}");
                yield return figure.Measure(options);
            }
        }
        finally
        {
            Models.Release();
        }
    }

    /// <summary>The model shared by consecutive figures of the same configuration (released when the key changes
    /// and at the end of the benchmark).</summary>
    protected ModelCache Models { get; } = new();
}

/// <summary>Keeps one model alive across consecutive figures that use it (modules are built outside any dispose scope).</summary>
public sealed class ModelCache
{
    string? _key;
    IDisposable? _value;

    /// <summary>The cached model for <paramref name="key"/>, built by <paramref name="build"/> (after a fixed seed) when absent.</summary>
    public T Get<T>(string key, Func<T> build) where T : class, IDisposable
    {
        if (_key == key && _value is T cached) return cached;
        Release();
        TorchSharp.torch.manual_seed(1);
        var value = build();
        (_key, _value) = (key, value);
        return value;
    }

    /// <summary>Disposes the cached model.</summary>
    public void Release()
    {
        _value?.Dispose();
        (_key, _value) = (null, null);
        GC.Collect();
    }
}
