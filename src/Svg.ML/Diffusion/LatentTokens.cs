using static TorchSharp.torch;

namespace Svg.ML.Diffusion;

/// <summary>
/// Layout conversions between SVG latents <c>[B, C, h, w]</c> (autoencoder side) and tokens <c>[B, h·w, C]</c>
/// (diffusion side), as the official code does (<c>permute(0, 2, 1).reshape(B, C, h, w)</c> when decoding).
/// </summary>
public static class LatentTokens
{
    /// <summary><c>[B, C, h, w]</c> → <c>[B, h·w, C]</c> (token n = row·w + col).</summary>
    public static Tensor ToTokens(Tensor latent)
    {
        if (latent.dim() != 4) throw new ArgumentException($"Expected a latent [B, C, h, w]; got [{string.Join(", ", latent.shape)}].");
        return latent.flatten(2).permute(0, 2, 1).contiguous();
    }

    /// <summary><c>[B, h·w, C]</c> → <c>[B, C, h, w]</c>.</summary>
    public static Tensor ToLatent(Tensor tokens, int height, int width)
    {
        if (tokens.dim() != 3 || tokens.shape[1] != (long)height * width)
            throw new ArgumentException($"Expected tokens [B, {height * width}, C]; got [{string.Join(", ", tokens.shape)}].");
        return tokens.permute(0, 2, 1).reshape(tokens.shape[0], tokens.shape[2], height, width);
    }

    /// <summary><c>[B, T, C]</c> → <c>[B, C, G, G]</c> for a square grid, G = √T.</summary>
    public static Tensor ToLatent(Tensor tokens)
    {
        int side = (int)Math.Round(Math.Sqrt(tokens.shape[1]));
        return ToLatent(tokens, side, side);
    }
}
