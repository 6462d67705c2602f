// One source file, compiled twice:
//   * into the library (Bn.MLNet.csproj defines BNMLNET_LIBRARY), where LibTorchSharpLoader runs the ELF routine below
//     at run time, before TorchSharp first loads;
//   * by MSBuild's RoslynCodeTaskFactory from Bn.MLNet.targets (shipped beside it in buildTransitive), where the
//     PatchGlibcxxMarker task at the end of this file runs the same routine on build and publish outputs.
// Keep it plain C# that compiles against netstandard 2.0 (no records, no init accessors, no File.Move overwrite).
//
// TorchSharp 0.107.0's libLibTorchSharp.so was linked with GCC 13, whose <iostream> makes the linker record a need
// for symbol version GLIBCXX_3.4.32 through the marker symbol _ZSt21ios_base_library_initv. Debian 12 and
// Ubuntu 22.04 ship libstdc++ up to GLIBCXX_3.4.30, so the dynamic loader refuses the library. The marker is never
// called (no relocation refers to it), so marking that version need as weak (VER_FLG_WEAK in vna_flags of
// .gnu.version_r) lets the loader accept the library without changing what it runs.
//
// A copy is patched only when:
//   1. the libstdc++.so.6 in use does not define GLIBCXX_3.4.32;
//   2. the library needs GLIBCXX_3.4.32 and the only dynamic symbol bound to it is the marker;
//   3. no relocation refers to the marker.
// The patch writes a new file beside the old one and renames it over the old one (rename(2) is atomic), so a hard
// link into the NuGet package cache is never written through. Files inside a NuGet package folder are never patched.
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
#if !BNMLNET_LIBRARY
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
#endif

namespace Bn.MLNet.Native
{
    /// <summary>What <see cref="GlibcxxMarkerPatch"/> found or did for one copy of libLibTorchSharp.so.</summary>
    internal enum GlibcxxMarkerStatus
    {
        /// <summary>The library does not need GLIBCXX_3.4.32 (or has no version needs): it loads as it is.</summary>
        NotNeeded,

        /// <summary>The need is already weak (patched before): it loads as it is.</summary>
        AlreadyWeak,

        /// <summary>Only the unused marker is bound to GLIBCXX_3.4.32: marking it weak makes the library load.</summary>
        Patchable,

        /// <summary>The need was marked weak in the file.</summary>
        Patched,

        /// <summary>The library really uses GLIBCXX_3.4.32 (another symbol, or a relocation against the marker): a newer libstdc++ is needed.</summary>
        RealNeed,
    }

    /// <summary>The outcome for one file: the status and a sentence for logs and messages.</summary>
    internal sealed class GlibcxxMarkerResult
    {
        public GlibcxxMarkerResult(GlibcxxMarkerStatus status, string message, int flagsOffset = -1)
        {
            Status = status;
            Message = message;
            FlagsOffset = flagsOffset;
        }

        public GlibcxxMarkerStatus Status { get; }

        public string Message { get; }

        /// <summary>File offset of the vna_flags field to patch (for <see cref="GlibcxxMarkerStatus.Patchable"/>).</summary>
        public int FlagsOffset { get; }
    }

    /// <summary>The ELF routine shared by the build task and the run-time loader check.</summary>
    internal static class GlibcxxMarkerPatch
    {
        public const string NeededVersion = "GLIBCXX_3.4.32";
        public const string MarkerSymbol = "_ZSt21ios_base_library_initv";

        /// <summary>Paths probed for the system libstdc++ (first existing one wins).</summary>
        public const string DefaultLibStdCxxCandidates =
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6;/lib/x86_64-linux-gnu/libstdc++.so.6;/usr/lib64/libstdc++.so.6;/lib64/libstdc++.so.6;/usr/lib/libstdc++.so.6;/usr/lib/aarch64-linux-gnu/libstdc++.so.6";

        private const uint ShtRela = 4;
        private const uint ShtNobits = 8;
        private const uint ShtDynsym = 11;
        private const uint ShtGnuVerneed = 0x6ffffffe;
        private const uint ShtGnuVersym = 0x6fffffff;
        private const ushort VerFlgWeak = 0x2;

        /// <summary>The first existing path of a ';'-separated list, or null.</summary>
        public static string? FindLibStdCxx(string candidates)
        {
            foreach (string candidate in candidates.Split(';'))
            {
                if (candidate.Length > 0 && File.Exists(candidate))
                {
                    return candidate;
                }
            }

            return null;
        }

        /// <summary>Whether the libstdc++ at <paramref name="libStdCxx"/> defines GLIBCXX_3.4.32.</summary>
        public static bool DefinesNeededVersion(string libStdCxx) => ContainsAscii(File.ReadAllBytes(libStdCxx), NeededVersion + "\0");

        /// <summary>Whether <paramref name="path"/> lies inside a NuGet package folder (a parent holds .nupkg.metadata or *.nupkg.sha512).</summary>
        public static bool IsInNuGetPackage(string path)
        {
            string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
            for (int depth = 0; dir is not null && depth < 6; depth++)
            {
                try
                {
                    if (File.Exists(Path.Combine(dir, ".nupkg.metadata")) || Directory.GetFiles(dir, "*.nupkg.sha512").Length > 0)
                    {
                        return true;
                    }
                }
                catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
                {
                    // An unreadable parent folder is not a package folder we could recognise; keep walking up.
                }

                dir = Path.GetDirectoryName(dir);
            }

            return false;
        }

        /// <summary>
        /// Inspects <paramref name="path"/> and, when only the marker is bound to GLIBCXX_3.4.32, marks that need weak
        /// (new file, then an atomic rename over the old one; the modification time is kept so incremental copies
        /// do not bring the unpatched file back). Call only when the libstdc++ in use lacks the version.
        /// </summary>
        /// <exception cref="InvalidDataException">The file is not a little-endian ELF64 shared library.</exception>
        /// <exception cref="IOException">The file or its folder cannot be written.</exception>
        /// <exception cref="UnauthorizedAccessException">The folder is read-only for this user.</exception>
        public static GlibcxxMarkerResult PatchFile(string path, string libStdCxx)
        {
            byte[] elf = File.ReadAllBytes(path);
            GlibcxxMarkerResult found = Inspect(elf, path, libStdCxx);
            if (found.Status != GlibcxxMarkerStatus.Patchable)
            {
                return found;
            }

            ushort flags = (ushort)(U16(elf, found.FlagsOffset) | VerFlgWeak);
            elf[found.FlagsOffset] = (byte)(flags & 0xff);
            elf[found.FlagsOffset + 1] = (byte)(flags >> 8);

            DateTime stamp = File.GetLastWriteTimeUtc(path);
            string temp = path + "." + Guid.NewGuid().ToString("N") + ".bnmlnet-tmp";
            try
            {
                File.WriteAllBytes(temp, elf);
                File.SetLastWriteTimeUtc(temp, stamp);
                File.Replace(temp, path, null);
            }
            finally
            {
                if (File.Exists(temp))
                {
                    File.Delete(temp);
                }
            }

            return new GlibcxxMarkerResult(GlibcxxMarkerStatus.Patched,
                $"marked the {NeededVersion} need of {path} as weak ({libStdCxx} lacks it; only the unused marker {MarkerSymbol} is bound to it).");
        }

        /// <summary>Reads the ELF version needs of <paramref name="elf"/> (the contents of <paramref name="path"/>) without changing anything.</summary>
        /// <exception cref="InvalidDataException">Not a little-endian ELF64 file, or a table lies outside the file.</exception>
        public static GlibcxxMarkerResult Inspect(byte[] elf, string path, string libStdCxx)
        {
            List<Section> sections = ReadSections(elf);
            Section? verneed = sections.Find(s => s.Type == ShtGnuVerneed);
            Section? versym = sections.Find(s => s.Type == ShtGnuVersym);
            int dynsymIndex = sections.FindIndex(s => s.Type == ShtDynsym);
            if (verneed is null || versym is null || dynsymIndex < 0)
            {
                return new GlibcxxMarkerResult(GlibcxxMarkerStatus.NotNeeded, $"{path} has no symbol version needs; left unchanged.");
            }

            Section dynsym = sections[dynsymIndex];
            int versionIndex;
            int auxOffset = FindVersionNeed(elf, verneed, sections[verneed.Link], out versionIndex);
            if (auxOffset < 0)
            {
                return new GlibcxxMarkerResult(GlibcxxMarkerStatus.NotNeeded, $"{path} does not need {NeededVersion}; left unchanged.");
            }

            if ((U16(elf, auxOffset + 4) & VerFlgWeak) != 0)
            {
                return new GlibcxxMarkerResult(GlibcxxMarkerStatus.AlreadyWeak, $"{path} already marks {NeededVersion} as weak.");
            }

            // Every dynamic symbol bound to that version must be the marker.
            Section symStr = sections[dynsym.Link];
            int markerIndex = -1;
            for (int i = 0; i < dynsym.Size / 24; i++)
            {
                if ((U16(elf, versym.Offset + i * 2) & 0x7fff) != versionIndex)
                {
                    continue;
                }

                string name = ReadString(elf, symStr.Offset + (int)U32(elf, dynsym.Offset + i * 24));
                if (name != MarkerSymbol)
                {
                    return new GlibcxxMarkerResult(GlibcxxMarkerStatus.RealNeed,
                        $"{path} binds symbol '{name}' to {NeededVersion}; it really needs a newer libstdc++ than {libStdCxx}. Left unchanged.");
                }

                markerIndex = i;
            }

            if (markerIndex >= 0 && HasRelocationAgainst(elf, sections, dynsymIndex, markerIndex))
            {
                return new GlibcxxMarkerResult(GlibcxxMarkerStatus.RealNeed, $"{path} has a relocation against {MarkerSymbol}; left unchanged.");
            }

            return new GlibcxxMarkerResult(GlibcxxMarkerStatus.Patchable, $"{path} needs {NeededVersion} only through the unused marker {MarkerSymbol}.", auxOffset + 4);
        }

        private static List<Section> ReadSections(byte[] elf)
        {
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
                if ((long)s.Offset + s.Size > elf.Length && s.Type != ShtNobits)
                {
                    throw new InvalidDataException($"section {i} out of range");
                }

                sections.Add(s);
            }

            return sections;
        }

        /// <summary>The file offset of the Vernaux entry of GLIBCXX_3.4.32 (and its version index), or -1.</summary>
        private static int FindVersionNeed(byte[] elf, Section verneed, Section verStr, out int versionIndex)
        {
            versionIndex = -1;
            int found = -1;
            int vn = verneed.Offset;
            for (int n = 0; n < verneed.Info; n++)
            {
                int count = U16(elf, vn + 2);
                int aux = vn + (int)U32(elf, vn + 8);
                for (int a = 0; a < count; a++)
                {
                    if (ReadString(elf, verStr.Offset + (int)U32(elf, aux + 8)) == NeededVersion)
                    {
                        found = aux;
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

            return found;
        }

        private static bool HasRelocationAgainst(byte[] elf, List<Section> sections, int dynsymIndex, int symbolIndex)
        {
            foreach (Section rela in sections)
            {
                if (rela.Type != ShtRela || rela.Link != dynsymIndex)
                {
                    continue;
                }

                for (int r = rela.Offset; r + 24 <= rela.Offset + rela.Size; r += 24)
                {
                    if ((long)(U64(elf, r + 8) >> 32) == symbolIndex)
                    {
                        return true;
                    }
                }
            }

            return false;
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
            int end = offset < 0 || offset >= data.Length ? -1 : Array.IndexOf(data, (byte)0, offset);
            if (end < 0)
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
}

#if !BNMLNET_LIBRARY
/// <summary>MSBuild task: patches copies of libLibTorchSharp.so in a build or publish output (never fails the build).</summary>
public sealed class PatchGlibcxxMarker : Task
{
    /// <summary>Copies of libLibTorchSharp.so in an output folder.</summary>
    [Required]
    public ITaskItem[] Files { get; set; } = Array.Empty<ITaskItem>();

    /// <summary>Paths probed for the system libstdc++ (first existing one wins).</summary>
    public string LibStdCxxCandidates { get; set; } = Bn.MLNet.Native.GlibcxxMarkerPatch.DefaultLibStdCxxCandidates;

    public override bool Execute()
    {
        if (Files.Length == 0)
        {
            return true;
        }

        string? libStdCxx = Bn.MLNet.Native.GlibcxxMarkerPatch.FindLibStdCxx(LibStdCxxCandidates);
        if (libStdCxx is null)
        {
            Log.LogMessage(MessageImportance.High, "Bn.MLNet: no libstdc++.so.6 found in the usual places; libLibTorchSharp.so left unchanged.");
            return true;
        }

        if (Bn.MLNet.Native.GlibcxxMarkerPatch.DefinesNeededVersion(libStdCxx))
        {
            Log.LogMessage(MessageImportance.Normal, $"Bn.MLNet: {libStdCxx} defines {Bn.MLNet.Native.GlibcxxMarkerPatch.NeededVersion}; libLibTorchSharp.so needs no change.");
            return true;
        }

        foreach (ITaskItem item in Files)
        {
            string path = item.ItemSpec;
            try
            {
                if (Bn.MLNet.Native.GlibcxxMarkerPatch.IsInNuGetPackage(path))
                {
                    Log.LogMessage(MessageImportance.High, $"Bn.MLNet: {path} is inside a NuGet package folder, which is never patched; left unchanged.");
                    continue;
                }

                var result = Bn.MLNet.Native.GlibcxxMarkerPatch.PatchFile(path, libStdCxx);
                bool important = result.Status == Bn.MLNet.Native.GlibcxxMarkerStatus.Patched || result.Status == Bn.MLNet.Native.GlibcxxMarkerStatus.RealNeed;
                Log.LogMessage(important ? MessageImportance.High : MessageImportance.Normal, "Bn.MLNet: " + result.Message);
            }
            catch (Exception ex) when (ex is IOException || ex is InvalidDataException || ex is UnauthorizedAccessException)
            {
                Log.LogMessage(MessageImportance.High, $"Bn.MLNet: {path} left unchanged: {ex.Message}");
            }
        }

        return true;
    }
}
#endif
