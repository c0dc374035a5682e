using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.Runtime;

/// <summary>
/// Mixed precision without autocast (TorchSharp 0.107 has none): a reduced-precision copy of a float32 "master" module
/// that does the compute. In training: <see cref="PullWeights"/> before each forward (master → copy, rounded to the
/// compute dtype), forward and backward through <see cref="Module"/>, <see cref="PushGradients"/> (copy's gradients →
/// the master's, as float32), then the optimiser steps the float32 master — so the weights, their updates and the
/// optimiser state stay float32, as with PyTorch's autocast (whose weight gradients are also computed in bf16 and
/// accumulated into the float32 leaves). For inference, <see cref="PullWeights"/> once. Buffers (e.g. the fixed
/// position embedding) are copied at construction.
/// </summary>
public sealed class ComputeCopy<T> : IDisposable where T : nn.Module
{
    readonly (Parameter Master, Parameter Copy)[] _parameters;

    /// <summary>The compute module (<see cref="DType"/>, on the master's device).</summary>
    public T Module { get; }

    /// <summary>The compute dtype.</summary>
    public ScalarType DType { get; }

    /// <summary>
    /// Builds the copy with <paramref name="build"/> (a fresh module of the same architecture as
    /// <paramref name="master"/>; its initial weights are overwritten), moves it to <paramref name="device"/> and
    /// <paramref name="dtype"/> and copies the master's parameters and buffers into it.
    /// </summary>
    public ComputeCopy(T master, Func<T> build, ScalarType dtype, Device device)
    {
        Module = build();
        DType = dtype;
        try
        {
            Module.to(device);
            Module.to(dtype);
            var copies = Module.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            _parameters = master.named_parameters()
                .Select(p => (p.parameter, copies.TryGetValue(p.name, out var c) ? c
                    : throw new ArgumentException($"The compute copy has no parameter '{p.name}'.")))
                .ToArray();
            var copyBuffers = Module.named_buffers().ToDictionary(b => b.name, b => b.buffer);
            using (no_grad())
                foreach (var (name, buffer) in master.named_buffers())
                    if (copyBuffers.TryGetValue(name, out var target)) target.copy_(buffer);
            PullWeights();
        }
        catch
        {
            Module.Dispose();
            throw;
        }
    }

    /// <summary>Master weights → the copy (rounded to <see cref="DType"/>).</summary>
    public void PullWeights()
    {
        using var _ = no_grad();
        foreach (var (master, copy) in _parameters) copy.copy_(master);
    }

    /// <summary>The copy's gradients → the master's (float32; parameters without a gradient are left alone), and the
    /// copy's gradients are cleared.</summary>
    public void PushGradients()
    {
        using var _ = no_grad();
        foreach (var (master, copy) in _parameters)
        {
            using var g = copy.grad;
            if (g is null) continue;
            using var mg = master.grad;
            if (mg is null) master.grad = g.to(master.dtype);
            else mg.copy_(g);
            copy.grad = null;
        }
    }

    /// <inheritdoc/>
    public void Dispose() => Module.Dispose();
}
