// MSBuild inline task (compiled by RoslynCodeTaskFactory from Bn.MLNet.targets; not part of the library build).
//
// TorchSharp 0.107.0's libLibTorchSharp.so was linked with GCC 13, whose <iostream> makes the linker record a need
// for symbol version GLIBCXX_3.4.32 through the marker symbol _ZSt21ios_base_library_initv. Debian 12 and
// Ubuntu 22.04 ship libstdc++ up to GLIBCXX_3.4.30, so the dynamic loader refuses the library. The marker is never
// called (no relocation refers to it), so marking that version need as weak (VER_FLG_WEAK in vna_flags of
// .gnu.version_r) lets the loader accept the library without changing what it runs.
//
// The task patches copies in a build or publish output only, never the NuGet package cache, and only when:
//   1. the machine's libstdc++.so.6 does not define GLIBCXX_3.4.32;
//   2. the library needs GLIBCXX_3.4.32 and the only dynamic symbol bound to it is the marker;
//   3. no relocation refers to the marker.
// Otherwise it leaves the file as it is and logs why.
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public sealed class PatchGlibcxxMarker : Task
{
    private const string NeededVersion = "GLIBCXX_3.4.32";
    private const string MarkerSymbol = "_ZSt21ios_base_library_initv";
    private const uint ShtRela = 4;
    private const uint ShtDynsym = 11;
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const uint ShtGnuVersym = 0x6fffffff;
    private const ushort VerFlgWeak = 0x2;

    /// <summary>Copies of libLibTorchSharp.so in an output folder.</summary>
    [Required]
    public ITaskItem[] Files { get; set; } = Array.Empty<ITaskItem>();

    /// <summary>Paths probed for the system libstdc++ (first existing one wins).</summary>
    public string LibStdCxxCandidates { get; set; } =
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6;/lib/x86_64-linux-gnu/libstdc++.so.6;/usr/lib64/libstdc++.so.6;/lib64/libstdc++.so.6;/usr/lib/libstdc++.so.6;/usr/lib/aarch64-linux-gnu/libstdc++.so.6";

    public override bool Execute()
    {
        if (Files.Length == 0)
        {
            return true;
        }

        string? libStdCxx = null;
        foreach (var candidate in LibStdCxxCandidates.Split(';'))
        {
            if (candidate.Length > 0 && File.Exists(candidate))
            {
                libStdCxx = candidate;
                break;
            }
        }

        if (libStdCxx is null)
        {
            Log.LogMessage(MessageImportance.High, "Bn.MLNet: no libstdc++.so.6 found in the usual places; libLibTorchSharp.so left unchanged.");
            return true;
        }

        if (ContainsAscii(File.ReadAllBytes(libStdCxx), NeededVersion + "\0"))
        {
            Log.LogMessage(MessageImportance.Normal, $"Bn.MLNet: {libStdCxx} defines {NeededVersion}; libLibTorchSharp.so needs no change.");
            return true;
        }

        foreach (var item in Files)
        {
            string path = item.ItemSpec;
            try
            {
                PatchOne(path, libStdCxx);
            }
            catch (Exception ex) when (ex is IOException || ex is InvalidDataException || ex is UnauthorizedAccessException)
            {
                Log.LogMessage(MessageImportance.High, $"Bn.MLNet: {path} left unchanged: {ex.Message}");
            }
        }

        return true;
    }

    private void PatchOne(string path, string libStdCxx)
    {
        byte[] elf = File.ReadAllBytes(path);
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
        {
            throw new InvalidDataException("not an ELF file");
        }

        if (elf[4] != 2 || elf[5] != 1)
        {
            throw new InvalidDataException("not a little-endian ELF64 file");
        }

        ulong shoff = U64(elf, 0x28);
        int shentsize = U16(elf, 0x3A);
        int shnum = U16(elf, 0x3C);
        if (shentsize != 64 || shoff == 0 || shoff + (ulong)(shnum * 64) > (ulong)elf.Length)
        {
            throw new InvalidDataException("section header table out of range");
        }

        var sections = new List<Section>();
        for (int i = 0; i < shnum; i++)
        {
            int h = checked((int)shoff + i * 64);
            var s = new Section(U32(elf, h + 4), checked((int)U64(elf, h + 24)), checked((int)U64(elf, h + 32)), (int)U32(elf, h + 40), (int)U32(elf, h + 44));
            if ((long)s.Offset + s.Size > elf.Length && s.Type != 8 /* SHT_NOBITS */)
            {
                throw new InvalidDataException($"section {i} out of range");
            }

            sections.Add(s);
        }

        Section? verneed = sections.Find(s => s.Type == ShtGnuVerneed);
        Section? versym = sections.Find(s => s.Type == ShtGnuVersym);
        int dynsymIndex = sections.FindIndex(s => s.Type == ShtDynsym);
        if (verneed is null || versym is null || dynsymIndex < 0)
        {
            Log.LogMessage(MessageImportance.Normal, $"Bn.MLNet: {path} has no symbol version needs; left unchanged.");
            return;
        }

        Section dynsym = sections[dynsymIndex];
        Section verStr = sections[verneed.Link];
        Section symStr = sections[dynsym.Link];

        // Find the Vernaux entry of GLIBCXX_3.4.32.
        int auxOffset = -1;
        int versionIndex = -1;
        int vn = verneed.Offset;
        for (int n = 0; n < verneed.Info; n++)
        {
            int count = U16(elf, vn + 2);
            int aux = vn + (int)U32(elf, vn + 8);
            for (int a = 0; a < count; a++)
            {
                if (ReadString(elf, verStr.Offset + (int)U32(elf, aux + 8)) == NeededVersion)
                {
                    auxOffset = aux;
                    versionIndex = U16(elf, aux + 6);
                }

                aux += (int)U32(elf, aux + 12);
            }

            int next = (int)U32(elf, vn + 12);
            if (next == 0)
            {
                break;
            }

            vn += next;
        }

        if (auxOffset < 0)
        {
            Log.LogMessage(MessageImportance.Normal, $"Bn.MLNet: {path} does not need {NeededVersion}; left unchanged.");
            return;
        }

        ushort flags = (ushort)U16(elf, auxOffset + 4);
        if ((flags & VerFlgWeak) != 0)
        {
            Log.LogMessage(MessageImportance.Normal, $"Bn.MLNet: {path} already marks {NeededVersion} as weak.");
            return;
        }

        // Every dynamic symbol bound to that version must be the marker.
        int symbolCount = dynsym.Size / 24;
        int markerIndex = -1;
        for (int i = 0; i < symbolCount; i++)
        {
            int ver = U16(elf, versym.Offset + i * 2) & 0x7fff;
            if (ver != versionIndex)
            {
                continue;
            }

            string name = ReadString(elf, symStr.Offset + (int)U32(elf, dynsym.Offset + i * 24));
            if (name != MarkerSymbol)
            {
                Log.LogMessage(MessageImportance.High, $"Bn.MLNet: {path} binds symbol '{name}' to {NeededVersion}; it really needs a newer libstdc++ than {libStdCxx}. Left unchanged.");
                return;
            }

            markerIndex = i;
        }

        // No relocation may refer to the marker.
        foreach (var rela in sections)
        {
            if (rela.Type != ShtRela || rela.Link != dynsymIndex)
            {
                continue;
            }

            for (int r = rela.Offset; r + 24 <= rela.Offset + rela.Size; r += 24)
            {
                if (markerIndex >= 0 && (long)(U64(elf, r + 8) >> 32) == markerIndex)
                {
                    Log.LogMessage(MessageImportance.High, $"Bn.MLNet: {path} has a relocation against {MarkerSymbol}; left unchanged.");
                    return;
                }
            }
        }

        flags |= VerFlgWeak;
        elf[auxOffset + 4] = (byte)(flags & 0xff);
        elf[auxOffset + 5] = (byte)(flags >> 8);

        // Write a new file and move it over the old one, so a hard link into the package cache is never written through.
        DateTime stamp = File.GetLastWriteTimeUtc(path);
        string temp = path + ".bnmlnet-tmp";
        File.WriteAllBytes(temp, elf);
        File.SetLastWriteTimeUtc(temp, stamp);
        File.Delete(path);
        File.Move(temp, path);
        Log.LogMessage(MessageImportance.High, $"Bn.MLNet: marked the {NeededVersion} need of {path} as weak ({libStdCxx} lacks it; only the unused marker {MarkerSymbol} is bound to it).");
    }

    private static bool ContainsAscii(byte[] haystack, string needle)
    {
        byte[] n = Encoding.ASCII.GetBytes(needle);
        for (int i = Array.IndexOf(haystack, n[0]); i >= 0 && i <= haystack.Length - n.Length; i = Array.IndexOf(haystack, n[0], i + 1))
        {
            int k = 1;
            while (k < n.Length && haystack[i + k] == n[k])
            {
                k++;
            }

            if (k == n.Length)
            {
                return true;
            }
        }

        return false;
    }

    private static string ReadString(byte[] data, int offset)
    {
        int end = Array.IndexOf(data, (byte)0, offset);
        if (offset < 0 || end < 0)
        {
            throw new InvalidDataException("string table out of range");
        }

        return Encoding.ASCII.GetString(data, offset, end - offset);
    }

    private static int U16(byte[] b, int o) => b[o] | (b[o + 1] << 8);

    private static uint U32(byte[] b, int o) => BitConverter.ToUInt32(b, o);

    private static ulong U64(byte[] b, int o) => BitConverter.ToUInt64(b, o);

    private sealed class Section
    {
        public Section(uint type, int offset, int size, int link, int info)
        {
            Type = type;
            Offset = offset;
            Size = size;
            Link = link;
            Info = info;
        }

        public uint Type { get; }
        public int Offset { get; }
        public int Size { get; }
        public int Link { get; }
        public int Info { get; }
    }
}
