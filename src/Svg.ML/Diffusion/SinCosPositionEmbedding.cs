using Svg.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Diffusion;

/// <summary>
/// Fixed 2-D sine-cosine position embedding (MAE / DiT <c>get_2d_sincos_pos_embed</c>), computed in float64 and
/// returned as float32 like the official. For token <c>n = row·G + col</c> of a G×G grid and width D:
/// <code>
/// emb[n, 0 : D/2]  = 1-D(col),   emb[n, D/2 : D] = 1-D(row)
/// 1-D(p)[0 : D/4]  = sin(p·ω),   1-D(p)[D/4 : D/2] = cos(p·ω),   ω_i = 1 / 10000^(i / (D/4)),  i = 0 … D/4-1
/// </code>
/// </summary>
public static class SinCosPositionEmbedding
{
    /// <summary>The embedding <c>[G·G, D]</c> (float32) for a <paramref name="gridSize"/>² grid; D must be a multiple of 4.</summary>
    public static Tensor Create2D(int embedDim, int gridSize)
    {
        TorchRuntime.EnsureInitialized();
        if (embedDim % 4 != 0) throw new ArgumentException($"embedDim {embedDim} must be a multiple of 4.", nameof(embedDim));
        using var scope = NewDisposeScope();
        Tensor coords = torch.arange(gridSize, dtype: float64);
        Tensor col = coords.repeat(gridSize);                          // n = row·G + col → col = n mod G
        Tensor row = coords.repeat_interleave(gridSize);               //                  row = n div G
        Tensor emb = torch.cat([Create1D(embedDim / 2, col), Create1D(embedDim / 2, row)], 1);
        return emb.to(float32).MoveToOuterDisposeScope();
    }

    /// <summary>The 1-D embedding <c>[M, D]</c> (float64) of positions <paramref name="pos"/> <c>[M]</c>: <c>[sin(p·ω), cos(p·ω)]</c>.</summary>
    public static Tensor Create1D(int embedDim, Tensor pos)
    {
        if (embedDim % 2 != 0) throw new ArgumentException($"embedDim {embedDim} must be even.", nameof(embedDim));
        using var scope = NewDisposeScope();
        Tensor omega = torch.arange(embedDim / 2, dtype: float64) / (embedDim / 2.0);
        omega = 1.0 / torch.full_like(omega, 10000.0).pow(omega);       // ω_i = 1 / 10000^(i / (D/2))
        Tensor angles = torch.outer(pos.to(float64), omega);              // [M, D/2]
        return torch.cat([torch.sin(angles), torch.cos(angles)], 1).MoveToOuterDisposeScope();
    }
}
