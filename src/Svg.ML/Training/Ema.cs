using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.Training;

/// <summary>
/// Exponential moving average of a model's weights (DiT <c>train.py::update_ema</c>; SVG uses decay 0.9999, every step):
/// <code>
/// ema_p ← decay · ema_p + (1 − decay) · p        for every parameter p (frozen ones too)
/// ema_b ← b                                       for every buffer b
/// </code>
/// The shadow model (<see cref="Shadow"/>) is a separate module of the same architecture, matched by parameter name;
/// it starts as an exact copy of the model (the official <c>update_ema(ema, model, decay=0)</c>), has gradients
/// disabled and is kept in evaluation mode.
/// </summary>
/// <typeparam name="TModule">The model type.</typeparam>
public sealed class Ema<TModule> where TModule : nn.Module
{
    readonly (Tensor Shadow, Tensor Source)[] _parameters;
    readonly (Tensor Shadow, Tensor Source)[] _buffers;

    /// <summary>
    /// Pairs <paramref name="shadow"/> with <paramref name="model"/> by name and copies the model's weights into it.
    /// Throws <see cref="ArgumentException"/> when names or shapes differ.
    /// </summary>
    public Ema(TModule model, TModule shadow, double decay)
    {
        if (decay is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(decay), decay, "EMA decay must be in [0, 1].");
        if (ReferenceEquals(model, shadow)) throw new ArgumentException("The EMA shadow must be a separate module.", nameof(shadow));
        Model = model;
        Shadow = shadow;
        Decay = decay;
        _parameters = Pair(model.named_parameters().Select(p => (p.name, (Tensor)p.parameter)),
                           shadow.named_parameters().Select(p => (p.name, (Tensor)p.parameter)), "parameter");
        _buffers = Pair(model.named_buffers(), shadow.named_buffers(), "buffer");
        foreach (var p in shadow.parameters()) p.requires_grad = false;
        shadow.eval();
        CopyFromModel();
    }

    /// <summary>The model whose weights are averaged.</summary>
    public TModule Model { get; }

    /// <summary>The averaged weights.</summary>
    public TModule Shadow { get; }

    /// <summary>Weight of the previous average.</summary>
    public double Decay { get; }

    /// <summary>One update: <c>ema ← decay·ema + (1 − decay)·param</c>; buffers are copied.</summary>
    public void Update() => Update(Decay);

    /// <summary>One update with an explicit <paramref name="decay"/> (0 copies the model).</summary>
    public void Update(double decay)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();   // the in-place ops' result handles
        foreach (var (shadow, source) in _parameters)
            shadow.mul_(decay).add_(source, alpha: 1 - decay);
        foreach (var (shadow, source) in _buffers)
            shadow.copy_(source);
    }

    /// <summary>Sets the average to the model's current weights.</summary>
    public void CopyFromModel()
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        foreach (var (shadow, source) in _parameters) shadow.copy_(source);
        foreach (var (shadow, source) in _buffers) shadow.copy_(source);
    }

    static (Tensor, Tensor)[] Pair(IEnumerable<(string Name, Tensor Tensor)> model, IEnumerable<(string Name, Tensor Tensor)> shadow, string what)
    {
        var shadowByName = shadow.ToDictionary(t => t.Name, t => t.Tensor);
        var pairs = new List<(Tensor, Tensor)>();
        foreach (var (name, source) in model)
        {
            if (!shadowByName.Remove(name, out var target))
                throw new ArgumentException($"EMA: the shadow model has no {what} '{name}'.");
            if (!target.shape.SequenceEqual(source.shape))
                throw new ArgumentException($"EMA: {what} '{name}' is [{string.Join(",", source.shape)}] in the model but [{string.Join(",", target.shape)}] in the shadow.");
            pairs.Add((target, source));
        }
        if (shadowByName.Count > 0)
            throw new ArgumentException($"EMA: the shadow model has extra {what}s: {string.Join(", ", shadowByName.Keys)}.");
        return pairs.ToArray();
    }
}
