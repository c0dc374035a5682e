using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Diffusion.Editing;

/// <summary>How two noises are blended.</summary>
public enum InterpolationMethod
{
    /// <summary>Linear: <c>(1 − λ)·a + λ·b</c> (the norm dips towards λ = 0.5 for independent noises, by up to 1/√2).</summary>
    Lerp,
    /// <summary>Spherical: <c>sin((1 − λ)θ)/sin θ·a + sin(λθ)/sin θ·b</c>, θ the angle between a and b (keeps the norm of equal-norm noises).</summary>
    Slerp,
}

/// <summary>
/// Interpolation between two noise tensors (the SVG paper's Fig. 7–8: each interpolant is then sampled to an image
/// under one class). Rows (dimension 0) are interpolated independently; the angle of slerp is taken over all other
/// dimensions of a row. At λ = 0 and λ = 1 both methods return the endpoints exactly (coefficients exactly 1 and 0).
/// </summary>
public static class Interpolation
{
    /// <summary><paramref name="count"/> values of λ evenly from 0 to 1 (count ≥ 2), in float64.</summary>
    public static double[] Lambdas(int count)
    {
        if (count < 2) throw new ArgumentOutOfRangeException(nameof(count), count, "Give at least 2 interpolation points (the two ends).");
        return Enumerable.Range(0, count).Select(i => i == count - 1 ? 1.0 : i / (double)(count - 1)).ToArray();
    }

    /// <summary>The interpolant at <paramref name="lambda"/> between <paramref name="a"/> and <paramref name="b"/> (same shape, rows in dim 0).</summary>
    public static Tensor Blend(Tensor a, Tensor b, double lambda, InterpolationMethod method) => method switch
    {
        InterpolationMethod.Lerp => Lerp(a, b, lambda),
        InterpolationMethod.Slerp => Slerp(a, b, lambda),
        _ => throw new ArgumentOutOfRangeException(nameof(method), method, "Unknown interpolation method."),
    };

    /// <summary>Linear interpolation <c>(1 − λ)·a + λ·b</c>.</summary>
    public static Tensor Lerp(Tensor a, Tensor b, double lambda)
    {
        Check(a, b);
        using var scope = NewDisposeScope();
        return ((1 - lambda) * a + lambda * b).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Spherical interpolation per row: <c>cos θ = ⟨a, b⟩ / (|a|·|b|)</c> (float64), coefficients
    /// <c>sin((1 − λ)θ)/sin θ</c> and <c>sin(λθ)/sin θ</c>; rows with sin θ &lt; 1e-6 (parallel) fall back to lerp.
    /// </summary>
    public static Tensor Slerp(Tensor a, Tensor b, double lambda)
    {
        Check(a, b);
        using var scope = NewDisposeScope();
        long n = a.shape[0];
        Tensor a64 = a.reshape(n, -1).to(float64), b64 = b.reshape(n, -1).to(float64);
        Tensor cos = ((a64 * b64).sum(1) / (a64.norm(1) * b64.norm(1))).clamp(-1, 1);
        Tensor theta = cos.acos();
        Tensor sin = theta.sin();
        Tensor parallel = sin < 1e-6;
        Tensor safe = torch.where(parallel, torch.ones_like(sin), sin);
        Tensor ca = torch.where(parallel, torch.full_like(sin, 1 - lambda), ((1 - lambda) * theta).sin() / safe);
        Tensor cb = torch.where(parallel, torch.full_like(sin, lambda), (lambda * theta).sin() / safe);
        long[] shape = Enumerable.Repeat(1L, (int)a.dim()).ToArray();
        shape[0] = n;
        return (ca.to(a.dtype).view(shape) * a + cb.to(a.dtype).view(shape) * b).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The interpolants of the pair (<paramref name="a"/>, <paramref name="b"/>) <c>[1, ...]</c> at each λ of
    /// <paramref name="lambdas"/>, stacked: <c>[L, ...]</c>.
    /// </summary>
    public static Tensor Path(Tensor a, Tensor b, IReadOnlyList<double> lambdas, InterpolationMethod method)
    {
        Check(a, b);
        if (a.shape[0] != 1) throw new ArgumentException("Path interpolates one pair: a and b must have one row.", nameof(a));
        using var scope = NewDisposeScope();
        return torch.cat(lambdas.Select(l => Blend(a, b, l, method)).ToArray(), 0).MoveToOuterDisposeScope();
    }

    static void Check(Tensor a, Tensor b)
    {
        if (!a.shape.SequenceEqual(b.shape))
            throw new ArgumentException($"The two noises differ in shape: [{string.Join(", ", a.shape)}] vs [{string.Join(", ", b.shape)}].");
        if (a.dim() < 1) throw new ArgumentException("The noises need a row dimension.");
    }
}
