using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Networks;

/// <summary>
/// Test-time flip averaging, the one rule every libtorch scoring path uses: each image is scored as the mean of the
/// softmax probabilities of the image and of its horizontal mirror (the last, width, axis of N×C×H×W reversed). Callers
/// run one eval-mode forward pass over the N images and one over their N <see cref="Mirror"/>s and combine the two N×K
/// logits with <see cref="Average"/>. Two passes of N rows rather than one of 2N: every activation keeps the size of
/// plain scoring, where one pass of 2N rows doubles them, and glibc maps and unmaps every block above 32 MB afresh on each
/// call (a batch of 256 mirrored to 512 rows page-faulted five times as much and cost 2.7× the plain pass instead of 2×).
/// Eval mode has no batch statistics, so each row's output is the same as when scored alone. The ONNX graph stacks both
/// halves in one run (ONNX Runtime reuses its own memory).
/// </summary>
internal static class FlipAveraging
{
    /// <summary>
    /// Checks that flip averaging makes sense for a C×H×W input: the width must be at least 2 (a width of 1 mirrors
    /// to itself; flat feature vectors are not images).
    /// </summary>
    /// <exception cref="ArgumentException">The width is 1; the message names <paramref name="optionName"/>.</exception>
    public static void RequireImage(int channels, int height, int width, string optionName)
    {
        if (width < 2)
        {
            throw new ArgumentException(
                $"{optionName} needs image input whose width is at least 2 (mirroring reverses the width axis); " +
                $"the input is {channels}×{height}×{width}. Turn the option off for non-image features.", optionName);
        }
    }

    /// <summary>The horizontal mirrors of the N rows of <paramref name="rows"/> (N×C·H·W or N×C×H×W), as N×C×H×W.</summary>
    public static Tensor Mirror(Tensor rows, NetworkArchitecture a) =>
        rows.reshape(-1, a.InputChannels, a.InputHeight, a.InputWidth).flip(3);

    /// <summary>
    /// Row i of the N×K result is (softmax(<paramref name="logits"/>[i]) + softmax(<paramref name="mirrorLogits"/>[i])) / 2:
    /// the flip-averaged probabilities of N images from their logits and their mirrors' logits.
    /// </summary>
    public static Tensor Average(Tensor logits, Tensor mirrorLogits) =>
        torch.nn.functional.softmax(logits, 1).add_(torch.nn.functional.softmax(mirrorLogits, 1)).mul_(0.5);
}
