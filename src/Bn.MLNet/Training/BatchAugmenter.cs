namespace Bn.MLNet.Training;

/// <summary>
/// Random crop with zero padding (<see cref="TrainerOptions.RandomCropPadding"/>) and horizontal flip
/// (<see cref="TrainerOptions.HorizontalFlip"/>), row by row, into one buffer reused for every batch; draws from a
/// generator seeded with <see cref="TrainerOptions.Seed"/>.
/// </summary>
internal sealed class BatchAugmenter
{
    private readonly float[] _buffer;
    private readonly Random _random;
    private readonly int _c, _h, _w, _pad;
    private readonly bool _flip;

    private BatchAugmenter(TrainerOptions o, int c, int h, int w)
    {
        _buffer = new float[o.BatchSize * c * h * w];
        _random = new Random(o.Seed);
        (_c, _h, _w, _pad, _flip) = (c, h, w, o.RandomCropPadding, o.HorizontalFlip);
    }

    /// <summary>An augmenter for C×H×W images, or null when <paramref name="o"/> asks for no augmentation.</summary>
    public static BatchAugmenter? Create(TrainerOptions o, int c, int h, int w) =>
        o.RandomCropPadding > 0 || o.HorizontalFlip ? new BatchAugmenter(o, c, h, w) : null;

    /// <summary>Augments the first <paramref name="n"/> rows of <paramref name="src"/>; returns the reused buffer holding them.</summary>
    public float[] Apply(float[] src, int n)
    {
        int plane = _h * _w;
        int length = _c * plane;
        for (int r = 0; r < n; r++)
        {
            int dy = _pad > 0 ? _random.Next(-_pad, _pad + 1) : 0;
            int dx = _pad > 0 ? _random.Next(-_pad, _pad + 1) : 0;
            bool mirror = _flip && _random.Next(2) == 1;
            for (int ch = 0; ch < _c; ch++)
            {
                ShiftPlane(src, (r * length) + (ch * plane), dy, dx, mirror);
            }
        }

        return _buffer;
    }

    private void ShiftPlane(float[] src, int baseIndex, int dy, int dx, bool mirror)
    {
        int h = _h, w = _w;
        for (int y = 0; y < h; y++)
        {
            int sy = y + dy;
            int outRow = baseIndex + (y * w);
            if (sy < 0 || sy >= h)
            {
                Array.Clear(_buffer, outRow, w);
                continue;
            }

            int inRow = baseIndex + (sy * w);
            for (int x = 0; x < w; x++)
            {
                int sx = (mirror ? w - 1 - x : x) + dx;
                _buffer[outRow + x] = sx >= 0 && sx < w ? src[inRow + sx] : 0f;
            }
        }
    }
}
